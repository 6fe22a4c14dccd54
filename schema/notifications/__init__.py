"""GraphQL for notifications: the inbox, preferences and Web Push subscriptions."""
