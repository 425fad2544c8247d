"""Developer tools: the smoke run of the whole DAG."""
