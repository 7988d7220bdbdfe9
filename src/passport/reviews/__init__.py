"""Review queues (real-name, organisation, profile …): items claimed by one staff member, then decided."""
