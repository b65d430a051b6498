// Pure values of georep.
