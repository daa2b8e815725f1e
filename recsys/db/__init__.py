"""The database: tables, engine factory, migrations and ingestion."""
