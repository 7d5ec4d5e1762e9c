"""Knowledge-base loading and chunking, embedding, indexes, and the rebuild command."""
