from gdpr_sweep.cli import main

main()
