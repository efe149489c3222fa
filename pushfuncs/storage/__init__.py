"""Storage adapters: Table Storage and queues behind small interfaces."""
