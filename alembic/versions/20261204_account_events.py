"""Announce an account's end: ``NOTIFY studio_accounts`` with its id when a user is soft-deleted
or deleted (`db.events.ACCOUNTS_CHANNEL`).

Revision ID: 20261204_account_events
Revises: 20261203_state_history
Create Date: 2026-12-04

An API process remembers, for a few seconds, which accounts it has seen exist, so that a
request need not look its viewer up again (`app.live_accounts`); this notification, committed
with the change whoever made it, makes every process forget the account at once.
"""

from collections.abc import Sequence

from alembic import op

revision: str = "20261204_account_events"
down_revision: str | Sequence[str] | None = "20261203_state_history"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

CHANNEL = "studio_accounts"  # db.events.ACCOUNTS_CHANNEL, fixed here as this revision sent it


def upgrade() -> None:
    op.execute(
        f"""
        CREATE FUNCTION studio_notify_account_end() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
            IF TG_OP = 'DELETE'
               OR (NEW.deleted_at IS NOT NULL AND OLD.deleted_at IS NULL) THEN
                PERFORM pg_notify('{CHANNEL}', OLD.id::text);
            END IF;
            RETURN NULL;
        END;
        $$
        """
    )
    op.execute(
        "CREATE TRIGGER users_notify_account_end AFTER UPDATE OF deleted_at OR DELETE ON users "
        "FOR EACH ROW EXECUTE FUNCTION studio_notify_account_end()"
    )


def downgrade() -> None:
    op.execute("DROP TRIGGER users_notify_account_end ON users")
    op.execute("DROP FUNCTION studio_notify_account_end()")
