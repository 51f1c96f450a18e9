-- Read models of the sinks: what applications need to merge two topics, the analytics tables and the
-- notification log. Every version column holds the Kafka offset of the event that last wrote its fields,
-- so a redelivered or replayed event never moves a row backwards.

-- application.decided and application.stage_changed are consumed independently, so a stage may land
-- before its decision: such a row exists with the decision fields empty until the decision arrives.
-- Decision fields follow `version` (offset in application.decided), stage fields follow `stage_version`
-- (offset in application.stage_changed): the final row does not depend on how the two topics interleave.
ALTER TABLE applications
    MODIFY candidate_id CHAR(36) CHARACTER SET ascii NULL,
    MODIFY status ENUM('pending', 'accepted', 'rejected') NOT NULL DEFAULT 'pending',
    MODIFY stage ENUM('submitted', 'reviewed', 'interview', 'offer', 'hired', 'declined') NOT NULL DEFAULT 'submitted',
    MODIFY submitted_at DATETIME(3) NULL,
    MODIFY version BIGINT NOT NULL DEFAULT -1,
    ADD COLUMN company_id CHAR(36) CHARACTER SET ascii NULL AFTER job_id,
    ADD COLUMN stage_changed_at DATETIME(3) NULL AFTER stage,
    ADD COLUMN stage_version BIGINT NOT NULL DEFAULT -1,
    -- Analysts: decisions and rejection reasons over time, platform-wide (covering).
    ADD KEY applications_decisions (status, decided_at, rejection_reason),
    -- One job's decision counts and reasons (covering); the funnel refresh reads it.
    ADD KEY applications_job_status (job_id, status, rejection_reason);

-- Per job, per closed 1-minute window, from analytics.job_minute.
CREATE TABLE job_window_stats (
    job_id              CHAR(36) CHARACTER SET ascii NOT NULL,
    window_start        DATETIME(3) NOT NULL,
    window_end          DATETIME(3) NOT NULL,
    company_id          CHAR(36) CHARACTER SET ascii NULL,
    applications        BIGINT UNSIGNED NOT NULL,
    accepted            BIGINT UNSIGNED NOT NULL,
    rejected            BIGINT UNSIGNED NOT NULL,
    rejected_by_reason  JSON NOT NULL,
    views               BIGINT UNSIGNED NOT NULL,
    conversion          DOUBLE NULL,
    version             BIGINT NOT NULL,
    PRIMARY KEY (job_id, window_start),
    -- A company's jobs over a time range.
    KEY job_window_company (company_id, window_start)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;

-- Per company, per 1-hour window hopping every 5 minutes, from analytics.company_hour.
CREATE TABLE company_window_stats (
    company_id          CHAR(36) CHARACTER SET ascii NOT NULL,
    window_start        DATETIME(3) NOT NULL,
    window_end          DATETIME(3) NOT NULL,
    applications        BIGINT UNSIGNED NOT NULL,
    accepted            BIGINT UNSIGNED NOT NULL,
    rejected            BIGINT UNSIGNED NOT NULL,
    rejected_by_reason  JSON NOT NULL,
    views               BIGINT UNSIGNED NOT NULL,
    conversion          DOUBLE NULL,
    version             BIGINT NOT NULL,
    PRIMARY KEY (company_id, window_start),
    -- Every company in one window, busiest first.
    KEY company_window_busiest (window_start, applications)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;

-- Per job: decided applications and how many reached each stage. Recomputed from applications and
-- application_stage_history inside the sink transaction that changed them, so it is idempotent too.
-- A company's funnel sums its jobs' rows (jobs_company, then this primary key).
CREATE TABLE job_funnel (
    job_id        CHAR(36) CHARACTER SET ascii NOT NULL,
    applications  INT UNSIGNED NOT NULL DEFAULT 0,
    accepted      INT UNSIGNED NOT NULL DEFAULT 0,
    rejected      INT UNSIGNED NOT NULL DEFAULT 0,
    reviewed      INT UNSIGNED NOT NULL DEFAULT 0,
    interview     INT UNSIGNED NOT NULL DEFAULT 0,
    offer         INT UNSIGNED NOT NULL DEFAULT 0,
    hired         INT UNSIGNED NOT NULL DEFAULT 0,
    declined      INT UNSIGNED NOT NULL DEFAULT 0,
    PRIMARY KEY (job_id)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;

-- One row per notification, from notification.outcome.
CREATE TABLE notification_log (
    notification_id  VARCHAR(64) CHARACTER SET ascii NOT NULL,
    recipient_id     VARCHAR(64) CHARACTER SET ascii NOT NULL,
    channel          ENUM('email', 'sms', 'push') NOT NULL,
    status           ENUM('sent', 'failed') NOT NULL,
    attempts         SMALLINT UNSIGNED NOT NULL,
    error            VARCHAR(500) NULL,
    latency_ms       BIGINT NOT NULL,
    occurred_at      DATETIME(3) NOT NULL,
    version          BIGINT NOT NULL,
    PRIMARY KEY (notification_id),
    -- A user's notifications, newest first.
    KEY notification_log_recipient (recipient_id, occurred_at),
    -- SREs: failed deliveries over a time range, per channel.
    KEY notification_log_status (status, occurred_at, channel)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;
