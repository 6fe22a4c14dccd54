"""SMS: provider adapters (Alibaba Cloud, Tencent Cloud, the development log), the templates file and
the "sms" channel."""
