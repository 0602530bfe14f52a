"""Delivery: turning a task's rendered messages into wire bytes and handing them on.

A message row moves through a small state machine, driven by three jobs:

1. ``dispatch.dispatch_due`` claims due TO_SEND rows by moving their
   ``dispatch_after`` forward and stamping a dispatch token, then enqueues them
   in batches of ids. A batch lost by the broker is dispatched again once that
   time passes.
2. ``batch.deliver_batch`` (the batch actor's body) claims the rows carrying its
   token (TO_SEND → SENDING with a lease it renews while it works: ``lease``),
   renders, builds MIME, signs (``build``), hands each message to the
   transport (``send``), and writes outcomes as they arrive, a few at a time
   (``recorder``, ``record``): DELIVERED, FAILED, REJECTED, or TO_SEND again
   with a later ``dispatch_after`` for a retry.
3. ``sweep.sweep`` returns rows whose lease ran out to TO_SEND (FAILED after
   ``KOOMSG_MAX_CLAIMS`` claims without an outcome) and completes tasks whose
   messages are all final.

Every state change is a conditional UPDATE, so any number of dispatchers,
workers and sweepers can run at once and a row is sent by one of them only.
The jobs are handed a ``context.DeliveryContext``, never the process runtime.
"""
