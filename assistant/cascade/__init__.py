"""The cascade: takes a routed question and each tier's context; gives the first answer good enough (its
confidence, named symbols and proposed patches judged), escalating tier by tier within the budget."""
