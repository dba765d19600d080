"""Modal dialogs and full screens: confirm, unsaved changes, prompts, help, details,
placement preview, scaling decisions."""
