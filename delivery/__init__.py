"""Deliveries: what the outbox's changes become for people and systems outside the process.

The outbox (`kernel.outbox`) records each committed change once. Here each change is *planned* into
deliveries (a webhook call per matching endpoint, a push or an SMS per person who should hear it),
and a worker delivers them: claimed in batches, retried with backoff, dead-lettered after its limit,
each attempt recorded. Channels (`delivery.channels.Channel`) do the sending; the packages that own
a kind of delivery (`webhooks`, `notifications`) provide a planner and a channel, and the server
assembles them into a `delivery.worker.DeliveryWorker`.
"""
