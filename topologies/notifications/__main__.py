from topologies.notifications.topology import main

main()
