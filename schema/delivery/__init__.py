"""The admin face of deliveries: the delivery log, dead letters and replay."""
