"""pushfuncs: a Windows Push Notification Services (WNS) backend on Azure Functions."""
