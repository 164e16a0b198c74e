"""Text utilities every layer reads with: expressions of time (`dates`), function words
(`words`), names compared as people write them (`names`). A leaf: it imports nothing of
engramdb."""
