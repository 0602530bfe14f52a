# mypy: disable-error-code="empty-body"
"""The koomsg plugin contract: every hook, declared and documented here.

A plugin is a module with functions marked ``@koomsg.plugins.hookimpl`` whose
names are the hooks below. Register it through the entry point group
``koomsg`` of your package, or name the module in ``KOOMSG_PLUGINS``.

Built-in plugins register through these same hooks, before any partner
plugin; pluggy calls the last registered first, so a partner's implementation
of a "first answer wins" hook overrides the built-in one.

Hook implementations may be plain functions or ``async def``: koomsg awaits
what they return. For "first answer wins" hooks koomsg calls implementations
one by one and stops at the first that returns something other than ``None``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from koomsg.plugins import hookspec

if TYPE_CHECKING:
    from koomsg.config import Settings
    from koomsg.core.delivery.context import DeliveryContext
    from koomsg.plugins.types import (
        BillingReservation,
        EnterpriseInfo,
        MessageEvent,
        MessageOutcome,
        PublicTemplate,
        ReviewDecision,
        TemplateForReview,
        Transport,
    )


@hookspec
def koomsg_transports(settings: Settings) -> Sequence[Transport]:
    """Offer delivery transports.

    Called once at start-up by every process that delivers mail. The
    transport whose ``name`` equals ``KOOMSG_TRANSPORT`` is used.

    :param settings: the loaded configuration (``KOOMSG_*`` variables; a
        plugin reads its own settings from ``settings.extra``).
    :return: transport objects with a ``name`` and ``async send(envelope) ->
        DeliveryResult``; ``send`` reports a refused message as a temporary or
        permanent failure with the server's reply instead of raising.

    All implementations are called; names must be unique.
    """


@hookspec(firstresult=True)
def koomsg_review_template(
    template: TemplateForReview, enterprise: EnterpriseInfo
) -> ReviewDecision | None:
    """Decide whether a new template, or a new revision of one, may be used to send.

    Called in the transaction that creates a template or edits it (every edit
    is a new revision). Holding or rejecting an edit leaves the revision
    approved before it sending.

    :param template: the revision as saved (sanitised body, parameter names,
        ``revision`` number).
    :param enterprise: its enterprise, with its industry class.
    :return: ``ReviewDecision(APPROVE)`` to approve at once, ``HOLD`` to wait
        for an operator (status APPROVING), ``REJECT`` with a reason; ``None``
        to leave the decision to the next plugin.

    First answer wins. The built-in policy holds templates of SENSITIVE
    enterprises and approves the rest.
    """


@hookspec(firstresult=True)
def koomsg_billing_reserve(
    enterprise: EnterpriseInfo, count: int, message_ids: Sequence[str], context: DeliveryContext
) -> BillingReservation | None:
    """Reserve the right to send ``count`` messages before a batch goes out.

    Called by a delivery worker before it hands a batch to the transport.

    :param enterprise: the sending enterprise.
    :param count: how many messages the batch will send.
    :param message_ids: their ids (stable across retries: charge each once).
    :param context: the worker's ``koomsg.core.delivery.context.DeliveryContext``:
        ``.db`` (the ``Database``), ``.settings``, ``.plugins`` and
        ``.transport``. No transaction is open: a plugin that writes opens its
        own (``context.db.transaction()``), committed before the batch is sent.
        External billing plugins can ignore it.
    :return: a ``BillingReservation``; ``allowed=False`` makes the messages
        REJECTED with ``reason`` (QUOTA_EXCEEDED). ``allowed_message_ids`` may
        allow a part of the batch: a list allows exactly those ids, so an empty
        list allows none; "all" is said with ``allowed_message_ids=None`` (the
        default; ``BillingReservation.allow_all()``). Returning ``None`` instead
        of a reservation defers to the next plugin.

    First answer wins; the built-in plugin spends packages first, then
    pay-per-use.
    """


@hookspec(firstresult=True)
def koomsg_billing_settle(
    enterprise: EnterpriseInfo,
    reservation: BillingReservation,
    outcomes: Sequence[MessageOutcome],
    context: Any,
) -> bool | None:
    """Settle a reservation once the batch's outcomes are known.

    Called once every outcome of the batch is written (outcomes are written as
    they arrive, a few at a time), in the transaction that completes the
    batch's task; and by the billing sweeper for reservations left open by a
    crash (older than the delivery lease plus a minute and with no message
    still SENDING; ``outcomes`` then lists what the database knows: a message
    counts as handed to a transport when DELIVERED, or FAILED after at least
    one attempt, unless its workers died sending it). Must be idempotent: the
    same reservation can be settled twice, and a message retried in a later
    batch must be charged once.

    :param enterprise: the sending enterprise.
    :param reservation: what ``koomsg_billing_reserve`` answered for the batch.
    :param outcomes: one per message of the batch; charge those with
        ``handed_to_transport`` true, release the rest.
    :param context: the ``AsyncSession`` of that open transaction. Writes made
        with it commit or roll back together with it; do not commit or close it.
    :return: ``True`` when settled; ``None`` defers to the next plugin (for a
        reservation another plugin made).

    First answer wins.
    """


@hookspec
def koomsg_message_event(event: MessageEvent) -> None:
    """Observe a message event: status change, open, click or unsubscribe.

    Called off the send path, after the change is committed; an exception in
    an observer is logged and never affects delivery. All implementations are
    called.
    """


@hookspec
def koomsg_public_templates() -> Sequence[PublicTemplate]:
    """Offer built-in templates that every enterprise can preview and copy.

    Called at start-up. All implementations are called; templates are told
    apart by ``key``, and a later plugin's template replaces an earlier one
    with the same key.
    """
