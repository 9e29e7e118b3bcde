"""Identity tokens: how the store's backend proves to recsvc who a browser's visitor is."""
