"""The Telegram bot: ``run_telegram`` (bots.telegram.app) runs it over the shared core."""
