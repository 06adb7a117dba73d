"""Small widgets and the field-to-widget binder the views and dialogs are made of."""
