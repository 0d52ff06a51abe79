"""Peer for bench/ingest: zeek-cut style parsing of a Zeek TSV conn.log with Python's
csv module: columns from #fields, '-' as unset, counts and times converted to numbers.
Prints the number of records parsed."""
import csv
import sys


def main(path):
    fields = None
    n = 0
    numeric = {"orig_bytes", "resp_bytes", "orig_pkts", "resp_pkts", "orig_ip_bytes",
               "resp_ip_bytes", "missed_bytes", "id.orig_p", "id.resp_p", "ip_proto"}
    floats = {"ts", "duration"}
    with open(path, newline="") as f:
        reader = csv.reader(f, delimiter="\t", quoting=csv.QUOTE_NONE)
        for row in reader:
            if row and row[0].startswith("#"):
                if row[0] == "#fields":
                    fields = row[1:]
                    conv = [(int if c in numeric else float if c in floats else str) for c in fields]
                continue
            rec = {}
            for name, fn, value in zip(fields, conv, row):
                rec[name] = None if value == "-" else fn(value)
            n += 1
    print(n)


if __name__ == "__main__":
    main(sys.argv[1])
