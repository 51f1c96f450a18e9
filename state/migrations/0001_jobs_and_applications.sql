-- Read models the sinks fill from job.lifecycle and the acceptance decisions.
-- `version` is the offset-derived event version: upserts only move a row forward.

CREATE TABLE jobs (
    job_id            CHAR(36) CHARACTER SET ascii NOT NULL,
    company_id        CHAR(36) CHARACTER SET ascii NOT NULL,
    title             VARCHAR(200) NOT NULL,
    description       TEXT NOT NULL,
    location          VARCHAR(120) NOT NULL,
    remote            BOOLEAN NOT NULL DEFAULT FALSE,
    salary_min        INT UNSIGNED NULL,
    salary_max        INT UNSIGNED NULL,
    currency          CHAR(3) CHARACTER SET ascii NULL,
    status            ENUM('open', 'closed') NOT NULL,
    max_applications  INT UNSIGNED NULL,
    deadline          DATETIME(3) NULL,
    created_at        DATETIME(3) NOT NULL,
    updated_at        DATETIME(3) NOT NULL,
    version           BIGINT NOT NULL,
    PRIMARY KEY (job_id),
    -- Job search: open jobs in a location, filtered by salary, newest first.
    KEY jobs_search (status, location, salary_min, created_at),
    -- An employer's own jobs.
    KEY jobs_company (company_id, status, created_at),
    FULLTEXT KEY jobs_text (title, description)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;

CREATE TABLE job_tags (
    tag     VARCHAR(40) NOT NULL,
    job_id  CHAR(36) CHARACTER SET ascii NOT NULL,
    PRIMARY KEY (tag, job_id),
    KEY job_tags_job (job_id)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;

CREATE TABLE applications (
    application_id    CHAR(36) CHARACTER SET ascii NOT NULL,
    job_id            CHAR(36) CHARACTER SET ascii NOT NULL,
    candidate_id      CHAR(36) CHARACTER SET ascii NOT NULL,
    status            ENUM('pending', 'accepted', 'rejected') NOT NULL,
    rejection_reason  VARCHAR(40) CHARACTER SET ascii NULL,
    stage             ENUM('submitted', 'reviewed', 'interview', 'offer', 'hired', 'declined') NOT NULL,
    submitted_at      DATETIME(3) NOT NULL,
    decided_at        DATETIME(3) NULL,
    updated_at        DATETIME(3) NOT NULL,
    version           BIGINT NOT NULL,
    PRIMARY KEY (application_id),
    -- One application per candidate per job, whatever redelivery or replay happens.
    UNIQUE KEY applications_job_candidate (job_id, candidate_id),
    -- A candidate's own applications, newest first.
    KEY applications_candidate (candidate_id, submitted_at),
    -- An employer's pipeline for one job.
    KEY applications_job_stage (job_id, stage, submitted_at)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;

CREATE TABLE application_stage_history (
    application_id  CHAR(36) CHARACTER SET ascii NOT NULL,
    stage           ENUM('submitted', 'reviewed', 'interview', 'offer', 'hired', 'declined') NOT NULL,
    changed_at      DATETIME(3) NOT NULL,
    changed_by      CHAR(36) CHARACTER SET ascii NULL,
    PRIMARY KEY (application_id, stage)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;
