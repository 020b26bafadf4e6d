"""Reports: takes usage records from the ledger or imported logs (Claude Code's transcripts, an Anthropic Console
export); gives the spend by token category, day, tier, kind and model, the top cost drivers, recommendations
with projected savings, and what the imported prompts would have cost routed by Tiercode (`tiercode report`)."""
