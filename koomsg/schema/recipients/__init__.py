"""Recipient files: the sample workbook a task's recipients are filled into."""
