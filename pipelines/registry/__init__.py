"""The blacklist registry: an SQLite file in WAL mode with its model, latest-wins core, bulk imports, feed
parsing, snapshot cache, retention holds and remembered device links."""
