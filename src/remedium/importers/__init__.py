"""Reading scanner, inventory and configuration reports into the inventory."""
