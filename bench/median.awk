# median.awk: the median of the numbers on stdin, one a line, sorted
# (sort -g | awk -f bench/median.awk); the mean of the middle two for an
# even count.
{ v[NR] = $1 }
END { print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }
