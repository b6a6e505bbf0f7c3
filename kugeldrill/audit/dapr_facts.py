"""What Dapr's Redis components and runtime accept (components-contrib, dapr/dapr).

Metadata keys are matched case-insensitively and unknown keys are silently ignored
(mapstructure with ErrorUnused false), so a misspelt or invented key never fails: it
just does nothing. These sets are the keys that do something.
"""

from __future__ import annotations

REDIS_COMMON = {
    "redishost", "redisport", "redispassword", "redisusername", "redisdb", "redistype",
    "enabletls", "insecureskiptlsverify", "clientcert", "clientkey", "failover",
    "sentinelmastername", "sentinelusername", "sentinelpassword", "redismaxretries",
    "redisminretryinterval", "redismaxretryinterval", "dialtimeout", "readtimeout",
    "writetimeout", "poolsize", "pooltimeout", "minidleconns", "idletimeout", "maxconnage",
    "idlecheckfrequency", "useentraid", "azureclientid", "azuretenantid", "azureclientsecret",
    "azurecertificate", "azurecertificatefile", "azurecertificatepassword", "azureenvironment",
    "useoidc", "oidctokenendpoint", "oidcclientid", "oidcclientsecret", "oidcscopes", "oidcaudience",
}
PUBSUB_REDIS = REDIS_COMMON | {
    "consumerid", "processingtimeout", "redeliverinterval", "queuedepth", "concurrency",
    "maxlenapprox", "streamttl",
}
STATE_REDIS = REDIS_COMMON | {"ttlinseconds", "queryindexes", "maxretries", "maxretrybackoff"}
# Keys the runtime itself reads, for any component of the kind.
RUNTIME_STATE = {"keyprefix", "actorstatestore", "outboxpublishpubsub", "outboxpublishtopic",
                 "outboxpubsub", "outboxdiscardwhenmissingstate"}
RUNTIME_PUBSUB = {"publishingscopes", "subscriptionscopes", "allowedtopics", "protectedtopics"}

KNOWN_KEYS = {
    "pubsub.redis": PUBSUB_REDIS | RUNTIME_PUBSUB,
    "state.redis": STATE_REDIS | RUNTIME_STATE,
}

# Keys people write believing they work, and what to write instead.
MISTAKEN_KEYS = {
    "databaseindex": "redisDB (the only key that selects the Redis database; this one is ignored, so the data lands in DB 0)",
    "db": "redisDB (the only key that selects the Redis database)",
    "streamname": "nothing: the stream key is always the topic name",
    "maxretries": "redisMaxRetries (maxRetries is accepted for state stores only)",
}

# Redis Duration-typed fields: a bare integer is milliseconds.
REDIS_DURATION_FIELDS = {"dialtimeout", "readtimeout", "writetimeout", "pooltimeout",
                         "idletimeout", "maxconnage", "redisminretryinterval", "redismaxretryinterval"}

# Kugelpos' programmatic subscriptions (docs/kugelpos-facts.md §5.1): component -> subscribing apps.
KUGELPOS_SUBSCRIBERS = {
    "pubsub-tranlog-report": ("report", "journal", "stock"),
    "pubsub-cashlog-report": ("report", "journal"),
    "pubsub-opencloselog-report": ("report", "journal"),
}

# Names under which a Resiliency default inbound retry policy applies to a pub/sub.
DEFAULT_INBOUND_RETRY_NAMES = (
    "DefaultPubsubComponentInboundRetryPolicy",
    "DefaultComponentInboundRetryPolicy",
    "DefaultComponentRetryPolicy",
    "DefaultRetryPolicy",
)

TEMPLATE_MARKERS = ("{uuid}", "{podname}", "{appid}", "{namespace}")
