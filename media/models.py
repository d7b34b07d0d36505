"""Evidence attachments (photos, videos, voice notes) arrive with the resumable uploads of issue #4."""
