"""Webhooks for integrators: endpoints, signing, and the channel that calls them."""
