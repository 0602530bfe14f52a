"""Messages/s of MessageSkeleton.fill against building an EmailMessage each time.

Run: ``.venv/bin/python bench/mime_fill.py [count]``. Prints figures; asserts nothing.
"""

from __future__ import annotations

import sys
import time
from email.message import EmailMessage
from email.policy import SMTP

from koomsg.core.delivery.mime import Attachment, MessageSkeleton

HTML = "<html><body>" + "<p>Hello {name}, our spring sale starts today. Été 50% off!</p>" * 40
TEXT = "Hello {name}, our spring sale starts today. Été 50% off!\n" * 40
PDF = bytes(range(256)) * 200


def with_skeleton(count: int) -> float:
    skeleton = MessageSkeleton.build(
        sender_address="news@shop.example",
        sender_alias="Shop Été",
        attachments=[Attachment("prices.pdf", "application/pdf", PDF)],
        feedback_id="task1:ent1:koomsg",
    )
    start = time.perf_counter()
    for index in range(count):
        name = f"user{index}"
        skeleton.fill(
            message_id=f"msg{index}",
            sender_domain="shop.example",
            to=f"{name}@example.org",
            subject="Spring sale, Été 50% off",
            text=TEXT.format(name=name),
            html=HTML.format(name=name),
            unsubscribe_url=f"https://koomsg.example/u/{index:032d}",
        )
    return time.perf_counter() - start


def with_email_message(count: int) -> float:
    start = time.perf_counter()
    for index in range(count):
        name = f"user{index}"
        message = EmailMessage()
        message["From"] = "Shop Été <news@shop.example>"
        message["To"] = f"{name}@example.org"
        message["Subject"] = "Spring sale, Été 50% off"
        message["Message-ID"] = f"<msg{index}@shop.example>"
        message["List-Unsubscribe"] = f"<https://koomsg.example/u/{index:032d}>"
        message["Feedback-ID"] = "task1:ent1:koomsg"
        message.set_content(TEXT.format(name=name))
        message.add_alternative(HTML.format(name=name), subtype="html")
        message.add_attachment(PDF, "application", "pdf", filename="prices.pdf")
        message.as_bytes(policy=SMTP)
    return time.perf_counter() - start


def main() -> None:
    count = int(sys.argv[1]) if len(sys.argv) > 1 else 10_000
    fast = with_skeleton(count)
    baseline_count = max(1, count // 10)
    slow = with_email_message(baseline_count)
    fast_rate, slow_rate = count / fast, baseline_count / slow
    print(f"skeleton fill:        {fast_rate:10.0f} messages/s ({count} messages)")
    print(f"EmailMessage build:   {slow_rate:10.0f} messages/s ({baseline_count} messages)")
    print(f"ratio:                {fast_rate / slow_rate:10.1f}x")


if __name__ == "__main__":
    main()
