-- Accounts (the gateway's user service): users, their refresh tokens, and the transactional outbox.
-- Unlike the read models these are written by the gateway itself, each change in one short transaction.

CREATE TABLE users (
    user_id        CHAR(36) CHARACTER SET ascii NOT NULL,
    -- Stored lowercased; the case-insensitive collation keeps the unique key honest anyway.
    email          VARCHAR(254) NOT NULL,
    -- argon2id, in its self-describing PHC string form (parameters and salt included).
    password_hash  VARCHAR(255) CHARACTER SET ascii NOT NULL,
    role           ENUM('candidate', 'employer', 'analyst', 'admin') NOT NULL,
    -- Employers only: the company whose jobs they act on.
    company_id     CHAR(36) CHARACTER SET ascii NULL,
    display_name   VARCHAR(100) NOT NULL,
    created_at     DATETIME(3) NOT NULL,
    updated_at     DATETIME(3) NOT NULL,
    PRIMARY KEY (user_id),
    UNIQUE KEY users_email (email),
    KEY users_company (company_id)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;

-- One row per refresh token ever issued. A family is one login session: each refresh uses its token (used_at)
-- and issues the next in the same family; presenting a used token again revokes the whole family.
CREATE TABLE refresh_tokens (
    -- SHA-256 of the token: tokens are 256 random bits, so a fast hash is enough and a leaked table is useless.
    token_hash  BINARY(32) NOT NULL,
    family_id   CHAR(36) CHARACTER SET ascii NOT NULL,
    user_id     CHAR(36) CHARACTER SET ascii NOT NULL,
    issued_at   DATETIME(3) NOT NULL,
    expires_at  DATETIME(3) NOT NULL,
    used_at     DATETIME(3) NULL,
    revoked_at  DATETIME(3) NULL,
    PRIMARY KEY (token_hash),
    KEY refresh_tokens_family (family_id),
    KEY refresh_tokens_user (user_id, expires_at)
) ENGINE=InnoDB DEFAULT CHARSET=ascii;

-- Events written in the same transaction as the change they announce; gateway.outbox_relay publishes them to
-- Kafka in id order and sets sent_at only after the broker acknowledged.
CREATE TABLE outbox (
    id           BIGINT UNSIGNED NOT NULL AUTO_INCREMENT,
    topic        VARCHAR(249) CHARACTER SET ascii NOT NULL,
    message_key  VARBINARY(255) NOT NULL,
    -- The event in Avro single-object encoding, exactly as it goes on the wire.
    payload      MEDIUMBLOB NOT NULL,
    created_at   DATETIME(3) NOT NULL,
    sent_at      DATETIME(3) NULL,
    PRIMARY KEY (id),
    KEY outbox_unsent (sent_at, id)
) ENGINE=InnoDB DEFAULT CHARSET=ascii;
