"""Delivery: turning a task's rendered messages into wire bytes and handing them on."""
