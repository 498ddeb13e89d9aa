"""Settings read once from the environment."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from zoneinfo import ZoneInfo

# The chain's own clock: its calendar days (daily jobs, reports) and years (points expiry) are Shanghai's.
CHAIN_TZ = ZoneInfo("Asia/Shanghai")
DEFAULT_DATA_DIR = Path(os.environ.get("DATA_DIR", "data"))


def _bool(name: str, default: bool) -> bool:
    raw = os.environ.get(name)
    if raw is None:
        return default
    return raw.strip().lower() in {"1", "true", "yes", "on"}


def _pairs(raw: str) -> tuple[tuple[str, str], ...]:
    """`a=1,b=2` as (("a", "1"), ("b", "2"))."""
    pairs = (item.split("=", 1) for item in raw.split(",") if "=" in item)
    return tuple((k.strip(), v.strip()) for k, v in pairs)


@dataclass(frozen=True)
class Settings:
    env: str = "development"
    database_url: str = ""
    redis_url: str | None = None
    data_dir: Path = DEFAULT_DATA_DIR
    # Ed25519 private key (PEM) for access tokens; in development generated once under data_dir.
    jwt_private_key: str | None = None
    # 32-byte key, base64, for personal data at rest (AES-GCM) and its blind index (HMAC).
    pii_key: str | None = None
    access_token_ttl_s: int = 900
    refresh_token_ttl_s: int = 30 * 24 * 3600
    argon2_time_cost: int = 3
    argon2_memory_kib: int = 65536
    seed_demo: bool = True
    log_json: bool = True
    cors_origins: tuple[str, ...] = field(default_factory=tuple)
    wechat_app_id: str | None = None
    wechat_app_secret: str | None = None
    # Each app instance runs due jobs in the background; claims make it safe for several to do so.
    run_jobs: bool = True
    # Seconds between folds of pending sale and refund events into the report facts, on each instance.
    facts_interval_s: float = 10.0
    # How often the background runner looks for due jobs (seconds).
    jobs_interval_s: float = 30.0
    # When set, /metrics answers only `Authorization: Bearer <metrics_token>` (scrapers), else everyone.
    metrics_token: str | None = None
    # PostgreSQL: how long a request may wait for a lock, or run one statement, before failing retryable.
    db_lock_timeout_ms: int = 5_000
    db_statement_timeout_ms: int = 30_000
    # A signed-in websocket re-checks its session this often (seconds), besides revocations announced at once.
    ws_session_check_s: float = 5.0
    # How long a request's session check is remembered per token (0: every request reads the session).
    session_cache_s: float = 5.0
    # How long an instance may keep the chain settings if a change's announcement is lost (0: read per request).
    settings_cache_s: float = 30.0
    # How long an instance may keep a computed report (the HQ dashboard) if the fold's announcement is lost; every fold
    # that changes its facts drops it sooner (0: computed per request).
    report_cache_s: float = 60.0
    # Public reads over GET: how long a shared cache (a CDN) may serve an answer, and serve it stale while it refreshes.
    public_max_age_s: int = 1
    # How long an instance may keep a public read's answer (a menu, nearby stores, a store's page) when no
    # announced change drops it sooner; 0: never kept.
    public_cache_s: float = 60.0
    public_swr_s: int = 30
    # How often each instance's job sends queued messages to members (seconds).
    messages_interval_s: float = 10.0
    # WeChat subscribe messages: our template key -> the template id registered in the WeChat console.
    wechat_message_templates: tuple[tuple[str, str], ...] = field(default_factory=tuple)

    @property
    def is_production(self) -> bool:
        return self.env == "production"

    @property
    def graphiql(self) -> bool:
        return not self.is_production

    @classmethod
    def from_env(cls) -> Settings:
        data_dir = Path(os.environ.get("DATA_DIR", "data"))
        return cls(
            env=os.environ.get("APP_ENV", "development"),
            database_url=os.environ.get("DATABASE_URL") or f"sqlite+aiosqlite:///{data_dir}/chain.db",
            redis_url=os.environ.get("REDIS_URL") or None,
            data_dir=data_dir,
            jwt_private_key=os.environ.get("JWT_PRIVATE_KEY") or None,
            pii_key=os.environ.get("PII_KEY") or None,
            access_token_ttl_s=int(os.environ.get("ACCESS_TOKEN_TTL", "900")),
            refresh_token_ttl_s=int(os.environ.get("REFRESH_TOKEN_TTL", str(30 * 24 * 3600))),
            seed_demo=_bool("SEED_DEMO", True),
            log_json=_bool("LOG_JSON", True),
            cors_origins=tuple(o for o in os.environ.get("CORS_ORIGINS", "").split(",") if o),
            wechat_app_id=os.environ.get("WECHAT_APP_ID") or None,
            wechat_app_secret=os.environ.get("WECHAT_APP_SECRET") or None,
            run_jobs=_bool("RUN_JOBS", True),
            facts_interval_s=float(os.environ.get("FACTS_INTERVAL_S", "10")),
            jobs_interval_s=float(os.environ.get("JOBS_INTERVAL_S", "30")),
            metrics_token=os.environ.get("METRICS_TOKEN") or None,
            db_lock_timeout_ms=int(os.environ.get("DB_LOCK_TIMEOUT_MS", "5000")),
            db_statement_timeout_ms=int(os.environ.get("DB_STATEMENT_TIMEOUT_MS", "30000")),
            ws_session_check_s=float(os.environ.get("WS_SESSION_CHECK_S", "5")),
            session_cache_s=float(os.environ.get("SESSION_CACHE_S", "5")),
            settings_cache_s=float(os.environ.get("SETTINGS_CACHE_S", "30")),
            report_cache_s=float(os.environ.get("REPORT_CACHE_S", "60")),
            public_max_age_s=int(os.environ.get("PUBLIC_MAX_AGE_S", "1")),
            public_cache_s=float(os.environ.get("PUBLIC_CACHE_S", "60")),
            public_swr_s=int(os.environ.get("PUBLIC_SWR_S", "30")),
            messages_interval_s=float(os.environ.get("MESSAGES_INTERVAL_S", "10")),
            wechat_message_templates=_pairs(os.environ.get("WECHAT_MESSAGE_TEMPLATES", "")),
        )
