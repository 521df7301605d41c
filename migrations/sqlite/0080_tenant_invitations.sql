-- A tenant's key or admin invites a person; the person, signed in, accepts
-- (or declines). Nobody outside the instance's superadmins gives an account a
-- role in a tenant it did not agree to join. One pending invitation per
-- tenant and email; a new one replaces it. The email need not have an
-- account (the inviter is told nothing either way).
CREATE TABLE tenant_invitations (
    tenant_id TEXT NOT NULL REFERENCES tenants (id),
    email TEXT NOT NULL,
    role TEXT NOT NULL CHECK (role IN ('owner', 'admin', 'viewer')),
    invited_by TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    expires_at INTEGER NOT NULL,
    PRIMARY KEY (tenant_id, email)
);
-- The account page lists the invitations waiting for its email.
CREATE INDEX tenant_invitations_email ON tenant_invitations (email);
