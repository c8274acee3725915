"""SQLModel store: tables, engine, sessions, migrations."""
