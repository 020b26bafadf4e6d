"""Batch: takes a file of questions, or files to review; gives at once the answers pre-flight, the caches and
the free tiers can, submits the rest to the providers' batch APIs at their batch prices after one budget
check, and later collects those answers into the ledger, each request once, however often collect runs."""
