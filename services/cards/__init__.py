"""Cards (卡项): card products, members' cards, their sale (counter and online), use at any valid store, refund,
expiry, gifting, and the ledger settlement clears between stores."""
