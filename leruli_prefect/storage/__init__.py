"""S3 access for job data: bucket names, the job archive, uploads and downloads.

Blocking (boto3, tarfile); async callers run these functions in a thread.
"""
