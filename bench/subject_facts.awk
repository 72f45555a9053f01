# subject_facts.awk: from a world's facts.csv (records whose quoted
# fields may hold newlines), the header and the first record of each of
# the subjects number from+1 .. from+count in file order.
#   awk -v from=0 -v count=100 -f bench/subject_facts.awk WORLD/facts.csv
{ rec = (rec == "" ? $0 : rec "\n" $0); q += gsub(/"/, "\"") }
q % 2 == 0 {
  split(rec, f, "\",\"")
  if (r == 0) print rec
  else if (!seen[f[1]]++) { if (k >= from && k < from + count) print rec; k++ }
  r++; rec = ""; q = 0
}
