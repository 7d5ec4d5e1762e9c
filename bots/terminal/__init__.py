"""Terminal adapter: ``askdesk chat`` and ``askdesk ask``."""
