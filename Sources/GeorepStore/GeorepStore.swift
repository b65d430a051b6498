// Stores.
