"""Cost per million notifications, from the operation counts, at Azure's public list prices.

Pay-as-you-go list prices in USD, looked up on 2026-11-23. Monthly free grants are ignored
(a worst case). Entra ID token requests are not billed.
"""

from __future__ import annotations

from dataclasses import dataclass

PRICES_DATE = "2026-11-23"

# Azure Functions Flex Consumption, On Demand (East US): per GB-second of instance memory while the
# instance executes functions, and per execution.
FLEX_GB_SECOND = 0.000026
FLEX_PER_MILLION_EXECUTIONS = 0.40
FLEX_INSTANCE_GB = 2.048  # the default instance memory size (2,048 MB)
# Queue Storage, general-purpose v2, LRS: Class 1 (put, get, delete, update) and Class 2, per 10,000.
QUEUE_PER_10K = 0.004
# Table Storage (standard account), LRS: every transaction type, per 10,000 (an entity-group
# transaction of up to 100 entities is one request).
TABLE_PER_10K = 0.00036
# Key Vault Standard: secret operations, per 10,000.
KEY_VAULT_PER_10K = 0.03
# Notification Hubs Basic: $10 a month for 10 million pushes.
NOTIFICATION_HUBS_BASIC_PER_MILLION = 1.00

PRICE_SOURCES: tuple[tuple[str, str, str], ...] = (
    (
        "Functions Flex Consumption, On Demand",
        f"${FLEX_GB_SECOND:.6f} per GB-s; ${FLEX_PER_MILLION_EXECUTIONS:.2f} per million executions; "
        f"instance memory {FLEX_INSTANCE_GB * 1000:.0f} MB",
        "East US; Azure Functions pricing page as quoted by Modal's Azure Functions pricing guide (2025-05-22)",
    ),
    (
        "Queue Storage (GPv2, LRS)",
        f"${QUEUE_PER_10K} per 10,000 operations (Class 1 and Class 2)",
        "West US; Azure retail prices as used by Infracost's Azure storage-queue test data",
    ),
    (
        "Table Storage (standard, LRS)",
        f"${TABLE_PER_10K} per 10,000 transactions (all types)",
        "West Europe; Azure retail prices as used by Infracost's Azure storage-table test data",
    ),
    (
        "Key Vault Standard",
        f"${KEY_VAULT_PER_10K} per 10,000 secret operations",
        "Infracost's Azure Key Vault test data; Microsoft Q&A on Key Vault cost estimation (~$0.03)",
    ),
    (
        "Notification Hubs Basic (comparison)",
        "$10 per month for 10 million pushes = $1.00 per million",
        "Notification Hubs tiers (team WNS reference, section 4a)",
    ),
)


@dataclass(frozen=True)
class PerDelivery:
    """Operations and time one delivered notification costs."""

    queue_ops: float
    table_ops: float
    key_vault_ops: float
    executions: float
    active_seconds: float  # instance time executing functions, per delivery


@dataclass(frozen=True)
class CostPerMillion:
    executions: float
    compute: float
    queue: float
    table: float
    key_vault: float

    @property
    def total(self) -> float:
        return self.executions + self.compute + self.queue + self.table + self.key_vault

    def breakdown(self) -> str:
        parts = (
            ("executions", self.executions),
            ("GB-s", self.compute),
            ("queue", self.queue),
            ("table", self.table),
            ("Key Vault", self.key_vault),
        )
        return ", ".join(f"{name} ${value:.4f}" for name, value in parts)


def cost_per_million(per: PerDelivery) -> CostPerMillion:
    million = 1_000_000
    return CostPerMillion(
        executions=per.executions * FLEX_PER_MILLION_EXECUTIONS,
        compute=per.active_seconds * million * FLEX_INSTANCE_GB * FLEX_GB_SECOND,
        queue=per.queue_ops * million / 10_000 * QUEUE_PER_10K,
        table=per.table_ops * million / 10_000 * TABLE_PER_10K,
        key_vault=per.key_vault_ops * million / 10_000 * KEY_VAULT_PER_10K,
    )


def split_storage(counts: dict[str, int]) -> tuple[int, int]:
    """(queue operations, table transactions) of a storage count."""
    queue = sum(v for k, v in counts.items() if k.startswith(("queue:", "host:")))
    table = sum(v for k, v in counts.items() if k.startswith("table:"))
    return queue, table
