"""The emulator's local Secret Manager: one store (store.py) that Cloud Run's `secret_key_ref`
and the Secret Manager API (service.py) both serve."""
