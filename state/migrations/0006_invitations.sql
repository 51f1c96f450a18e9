-- Invitations: an employer invites a colleague to its company, an admin invites an analyst or an employer.
-- Written by the gateway like the accounts tables. Only the token's SHA-256 is kept (as for refresh tokens), and a
-- registration with the token sets accepted_at in the same transaction as the user row it creates.
CREATE TABLE invitations (
    invitation_id  CHAR(36) CHARACTER SET ascii NOT NULL,
    -- SHA-256 of the token: 256 random bits, so a fast hash is enough and a leaked table lets nobody register.
    token_hash     BINARY(32) NOT NULL,
    -- Stored lowercased, like users.email; registration must use this address.
    email          VARCHAR(254) NOT NULL,
    role           ENUM('employer', 'analyst') NOT NULL,
    -- Employers only: the company the invitee joins.
    company_id     CHAR(36) CHARACTER SET ascii NULL,
    -- The employer or admin who invited; NULL when the operator's command did.
    invited_by     CHAR(36) CHARACTER SET ascii NULL,
    created_at     DATETIME(3) NOT NULL,
    expires_at     DATETIME(3) NOT NULL,
    accepted_at    DATETIME(3) NULL,
    accepted_by    CHAR(36) CHARACTER SET ascii NULL,
    revoked_at     DATETIME(3) NULL,
    PRIMARY KEY (invitation_id),
    -- Registration finds its invitation by the token.
    UNIQUE KEY invitations_token (token_hash),
    -- A company's pending invitations, newest first.
    KEY invitations_company_pending (company_id, accepted_at, revoked_at, created_at)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;
