"""What every layer shares: the error vocabulary, the settings, the bf16 rule and progress bars.

Imported by the indexer, the runtime search, training and the interfaces alike; it imports
nothing of them.
"""
