from test_automount_pam import ns  # noqa: F401  (the namespace fixture for every test file)
