from adcalc.cli import main

raise SystemExit(main())
