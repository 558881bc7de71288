#!/bin/bash
# Issue 15, by hand: the reproductions of the issue, run against a built
# binary (default build/cli/notes), printing what each gives. The same
# behaviour is asserted by test_damage, test_replica_files, test_hostile_text
# and test_faults; this prints the figures quoted in the closing note.
#   bash tests/issue15-repro.sh [path/to/notes]     (needs python3)
N=$(realpath "${1:-build/cli/notes}")
R=$(mktemp -d)
export NOTES_HOME=$R/h
q() { "$@" >/dev/null 2>&1; }
echo "## 1. flip offset 43 after compact"
q $N init --name Ana; q $N new W; q $N append W committed; q $N compact
L=$(ls $NOTES_HOME/notes/*.log); ID=$(basename $L .log)
sz0=$(stat -c %s $L)
printf '\xff' | dd of=$L bs=1 seek=43 conv=notrunc 2>/dev/null
$N list >/dev/null 2>$R/e; echo "list exit $? ; $(head -c 230 $R/e)"
$N verify >/dev/null 2>$R/e; echo "verify exit $? ; $(head -c 200 $R/e)"
echo "log size before/after reads: $sz0 / $(stat -c %s $L); files: $(ls $NOTES_HOME/notes | tr '\n' ' ')"
echo "## 2. truncate to 0 and 20"
for c in 0 20; do
  rm -rf $NOTES_HOME; q $N init --name Ana; q $N new W; q $N append W committed
  L=$(ls $NOTES_HOME/notes/*.log); truncate -s $c $L
  $N list >$R/o 2>$R/e; echo "cut to $c: list exit $?, listed: $(grep -c . $R/o) line(s): $(cut -c1-60 $R/o)"
  $N verify >/dev/null 2>$R/e; echo "   verify exit $?: $(head -c 160 $R/e)"
done
echo "## 3. two cuts at the same offset"
rm -rf $NOTES_HOME; q $N init --name Ana; q $N new W; q $N append W committed
L=$(ls $NOTES_HOME/notes/*.log); S=${L%.log}.state; cp $L $R/l0; cp $S $R/s0
head -c 727566 /dev/urandom > $R/big
cat $R/big >> $L; q $N append W one
cp $R/l0 $L; cp $R/s0 $S; printf 'sixty-eight bytes of a second torn tail.............................' >> $L; q $N append W two
ls -l $NOTES_HOME/notes | awk '/torn/{print "   " $5, $9}'
echo "## 4. rollback to the first 3 records"
rm -rf $NOTES_HOME; q $N init --name Ana; q $N new W; q $N append W "committed"; q $N decide W "Ship on Friday"; q $N todo W "Look for places" --owner RD; q $N append W "later line"
L=$(ls $NOTES_HOME/notes/*.log); ID=$(basename $L .log)
q $N export $ID --format bundle -o $R/peer.bundle
python3 - "$L" <<'PY'
import sys,struct
p=sys.argv[1]; b=open(p,'rb').read(); off=32
for i in range(3):
    off+=32+struct.unpack('<I',b[off+8:off+12])[0]
print("   log %d -> %d bytes" % (len(b), off)); open(p,'r+b').truncate(off)
PY
$N verify >/dev/null 2>$R/e; echo "verify exit $?: $(head -c 250 $R/e)"
$N append W "new line" >/dev/null 2>$R/e; echo "append exit $?: $(tail -c 200 $R/e)"
$N import $R/peer.bundle >/dev/null 2>$R/e; echo "import exit $?"
$N verify >/dev/null 2>&1; echo "verify after import exit $?"
$N show $ID | grep -E "Ship on Friday|RD: Look" | sed 's/^/   /'
q $N append $ID "after recovery"; $N log $ID --json | python3 -c 'import json,sys; s=[c["seq"] for c in json.load(sys.stdin)]; print("   seqs:", sorted(s), "unique:", len(s)==len(set(s)))'
$N verify >/dev/null 2>&1; echo "verify after next append exit $?"
echo "## 6. control characters"
rm -rf $NOTES_HOME; q $N init --name Ana; q $N new W; q $N set W title $'\e]0;pwned\a\e[2J'
$N list | cat -v | sed 's/^/   /'
echo "## 8. checksummed files"
q $N space create team
F=$NOTES_HOME/spaces/team; cp $F $R/sp
python3 - "$F" <<'PY'
import sys,re
p=sys.argv[1]; s=open(p).read()
m=re.search(r'secret ([0-9a-f]+)',s)
i=m.start(1)+5; c=s[i]; s=s[:i]+('1' if c!='1' else '2')+s[i+1:]; open(p,'w').write(s)
PY
$N verify >/dev/null 2>$R/e; echo "space secret digit flipped: verify exit $?: $(grep -m1 team $R/e | head -c 200)"
$N invite team >/dev/null 2>$R/e; echo "invite exit $?: $(head -c 200 $R/e)"
cp $R/sp $F
P=$NOTES_HOME/person; cp $P $R/p; printf 'x' | dd of=$P bs=1 seek=40 conv=notrunc 2>/dev/null
$N person export $R/out.key >/dev/null 2>$R/e; echo "person export of a damaged key: exit $?, file written: $(test -e $R/out.key && echo yes || echo no): $(head -c 160 $R/e)"
cp $R/p $P
echo "## 9. import /dev/zero"
/usr/bin/time -f "   maxrss %M KiB, %e s" $N import /dev/zero 2>&1 >/dev/null | tail -2; 
echo "## 10. exit 3"
rm -rf $NOTES_HOME; q $N init --name Ana; q $N new W
L=$(ls $NOTES_HOME/notes/*.log); mv $L $R/x; mkdir $L
$N show W >/dev/null 2>$R/e; echo "log replaced by a directory: show exit $?: $(head -c 160 $R/e)"
$N verify >/dev/null 2>$R/e; echo "verify exit $?"
rm -rf $R
