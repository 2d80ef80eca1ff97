#!/usr/bin/env python3
"""Makes the seed corpus of every fuzz target (see ../README.md for what each seed is).

Run as root from this directory, with gcc, strip, perf and a stacktop binary (`STACKTOP=path`, default
`stacktop` on PATH). Recording is not deterministic: running this again gives different seeds of the
same kinds. Text seeds are written from this machine's /proc.
"""
import gzip, os, re, shutil, struct, subprocess, tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
STACKTOP = os.environ.get('STACKTOP', 'stacktop')
TMP = tempfile.mkdtemp(prefix='stacktop-seeds-')


def run(*cmd, **kw):
    print('+', ' '.join(cmd))
    return subprocess.run(cmd, check=True, **kw)


def put(target, name, data):
    os.makedirs(os.path.join(HERE, target), exist_ok=True)
    with open(os.path.join(HERE, target, name), 'wb') as f:
        f.write(data)


def tmp(name):
    return os.path.join(TMP, name)


# ---------------------------------------------------------------------------------------------------------
# perf.data reading (x86_64, little-endian): the attribute of a one-event file and its records.

def perf_data(path):
    b = open(path, 'rb').read()
    attr_size, = struct.unpack_from('<Q', b, 16)
    attrs_at, _, data_at, data_size = struct.unpack_from('<4Q', b, 24)
    attr = b[attrs_at:attrs_at + attr_size]
    sample_type, = struct.unpack_from('<Q', attr, 24)
    regs_mask, = struct.unpack_from('<Q', attr, 80)
    records, pos = [], data_at
    while pos + 8 <= data_at + data_size:
        kind, _misc, size = struct.unpack_from('<IHH', b, pos)
        if size == 0:
            break
        records.append((kind, b[pos:pos + size]))
        pos += size
    return b, sample_type, bin(regs_mask).count('1'), records


def sample_fields(rec, sample_type, nregs):
    """The fields of a PERF_RECORD_SAMPLE up to the user stack (no READ, RAW or BRANCH_STACK)."""
    p, out = 8, {}

    def u64():
        nonlocal p
        v, = struct.unpack_from('<Q', rec, p)
        p += 8
        return v
    if sample_type & 1 << 16: u64()                # IDENTIFIER
    if sample_type & 1: out['ip'] = u64()          # IP
    if sample_type & 2:                            # TID
        out['pid'], out['tid'] = struct.unpack_from('<II', rec, p)
        p += 8
    if sample_type & 4: out['time'] = u64()        # TIME
    if sample_type & 8: u64()                      # ADDR
    if sample_type & 64: u64()                     # ID
    if sample_type & 512: u64()                    # STREAM_ID
    if sample_type & 128: out['cpu'] = u64() & 0xffffffff  # CPU
    if sample_type & 256: out['period'] = u64()    # PERIOD
    if sample_type & 32:                           # CALLCHAIN
        n = u64()
        out['chain'] = [u64() for _ in range(n)]
    if sample_type & 1 << 12:                      # REGS_USER
        abi = u64()
        out['regs'] = [u64() for _ in range(nregs)] if abi else None
    if sample_type & 1 << 13:                      # STACK_USER
        size = u64()
        data = rec[p:p + size]
        p += size
        out['stack'] = data[:u64() if size else 0]
    return out


def mmap2(rec):
    pid, _tid, addr, length, pgoff = struct.unpack_from('<IIQQQ', rec, 8)
    prot, = struct.unpack_from('<I', rec, 64)
    name = rec[72:].split(b'\0')[0].decode()
    return dict(pid=pid, addr=addr, len=length, pgoff=pgoff, prot=prot, name=name)


# x86_64 perf register numbers: bp 6, sp 7, ip 8. perf's dwarf mode samples all of 0xff0fff, in which
# they are the 7th, 8th and 9th.
BP, SP, IP = 6, 7, 8

# ---------------------------------------------------------------------------------------------------------
# The recordings.

run('gcc', '-O2', '-g', '-o', tmp('tiny'), os.path.join(HERE, 'tiny.c'))
run('strip', '-o', tmp('tiny.stripped'), tmp('tiny'))
run('perf', 'record', '-q', '-e', 'cpu-clock', '-g', '-o', tmp('perf-true-g.data'), '--', 'true')
run('perf', 'record', '-q', '-e', 'cpu-clock', '-F', '500', '--call-graph', 'dwarf,256', '-o',
    tmp('tiny-dwarf256.data'), '--', tmp('tiny'))
run('perf', 'record', '-q', '-e', 'cpu-clock', '-F', '5000', '--call-graph', 'dwarf,512', '-o',
    tmp('tiny-dwarf512.data'), '--', tmp('tiny'))
shell_loop = 'i=0; while [ $i -lt 100000 ]; do i=$((i+1)); done'
run(STACKTOP, 'record', '-e', 'cpu-clock', '-F', '2000', '-o', tmp('stacktop-sh.pb.gz'), '--', 'sh', '-c',
    shell_loop)
run(STACKTOP, 'record', '-e', 'cpu-clock', '-o', tmp('stacktop-true.pb.gz'), '--', 'true')

# perfdata: two whole files.
for name in ['perf-true-g.data', 'tiny-dwarf256.data']:
    put('perfdata', name, open(tmp(name), 'rb').read())

# perfdata_section: each section of perf-true-g.data as the target's input (section selector, contents).
b, _, _, _ = perf_data(tmp('perf-true-g.data'))
attr_size, = struct.unpack_from('<Q', b, 16)
attrs_at, attrs_size, data_at, data_size = struct.unpack_from('<4Q', b, 24)
put('perfdata_section', 'attrs', b'\x00' + b[attrs_at:attrs_at + attrs_size])
ids_at, ids_size = struct.unpack_from('<QQ', b, attrs_at + attr_size - 16)
put('perfdata_section', 'ids', b'\x01' + b[ids_at:ids_at + ids_size])
put('perfdata_section', 'data', b'\x02' + b[data_at:data_at + data_size])
index = data_at + data_size
for bit in range(32):
    if struct.unpack_from('<Q', b, 72)[0] >> bit & 1:
        at, size = struct.unpack_from('<QQ', b, index)
        put('perfdata_section', f'feature-{bit:02}', bytes([3 + bit]) + b[at:at + size])
        index += 16

# pprof: stacktop's output, gzipped (as written) and raw; pprof_gzip: the raw protobuf (the target gzips).
for name in ['stacktop-sh.pb.gz', 'stacktop-true.pb.gz']:
    gz = open(tmp(name), 'rb').read()
    put('pprof', name, gz)
    put('pprof', name[:-3], gzip.decompress(gz))
    put('pprof_gzip', name[:-3], gzip.decompress(gz))

# ring_record: samples of the dwarf recording, (1) as perf's layout with its sample_type, (2) rewritten into
# the layout stacktop's sessions ask for (TID TIME CPU PERIOD CALLCHAIN REGS_USER STACK_USER, 3 registers).
STACKTOP_TYPE = 2 | 4 | 128 | 256 | 32 | 1 << 12 | 1 << 13
_, st, nregs, records = perf_data(tmp('tiny-dwarf256.data'))
samples = [r for k, r in records if k == 9]
for i, rec in enumerate(samples[:3]):
    put('ring_record', f'perf-dwarf-{i}', struct.pack('<QBB', st, nregs, 0) + rec)
_, st_fp, _, fp_records = perf_data(tmp('perf-true-g.data'))
for i, rec in enumerate([r for k, r in fp_records if k == 9][:2]):
    put('ring_record', f'perf-fp-{i}', struct.pack('<QBB', st_fp, 0, 0) + rec)
for i, rec in enumerate(samples[:3]):
    f = sample_fields(rec, st, nregs)
    chain = f['chain'] + [-512 & (2**64 - 1), f['ip']]  # the kernel's part, then PERF_CONTEXT_USER, ip
    stack = f['stack']
    body = struct.pack('<IIQQQ', f['pid'], f['tid'], f['time'], f.get('cpu', 0), f.get('period', 1))
    body += struct.pack('<Q', len(chain)) + b''.join(struct.pack('<Q', a) for a in chain)
    regs = f['regs']
    body += struct.pack('<QQQQ', 2, regs[BP], regs[SP], regs[IP])  # abi 2: PERF_SAMPLE_REGS_ABI_64
    body += struct.pack('<Q', len(stack)) + stack + struct.pack('<Q', len(stack))
    rec = struct.pack('<IHH', 9, 2, 8 + len(body)) + body  # misc 2: PERF_RECORD_MISC_USER
    limit = 0 if i else 8  # the first keeps 8 * 16 bytes of its stack copy, as a stack budget would
    put('ring_record', f'stacktop-{i}', struct.pack('<QBB', STACKTOP_TYPE, 3, limit) + rec)

# unwind_tables: samples in tiny's own code, with the executable mapping of tiny they were taken in.
_, st, nregs, records = perf_data(tmp('tiny-dwarf512.data'))
text = [m for m in (mmap2(r) for k, r in records if k == 10) if m['name'].endswith('/tiny') and m['prot'] & 4]
elf = open(tmp('tiny.stripped'), 'rb').read()
n, seen = 0, set()
for k, rec in records:
    if k != 9 or n >= 4:
        continue
    f = sample_fields(rec, st, nregs)
    m = next((m for m in text if m['pid'] == f['pid'] and m['addr'] <= f['ip'] < m['addr'] + m['len']), None)
    if m is None or not f.get('regs') or f['ip'] in seen:
        continue
    seen.add(f['ip'])
    regs = f['regs']
    stack = f['stack'][:512].ljust(512, b'\0')
    header = struct.pack('<6Q', m['addr'], m['len'], m['pgoff'], regs[IP], regs[SP], regs[BP])
    put('unwind_tables', f'tiny-{n}', header + stack + elf)
    n += 1

# elf_symbolize: offsets of leaf, rec + 4, main + 0x10 and _start, then the file with and without DWARF.
syms = dict((l.split()[2], int(l.split()[0], 16))
            for l in subprocess.run(['nm', tmp('tiny')], capture_output=True, text=True).stdout.splitlines()
            if len(l.split()) == 3)
offsets = struct.pack('<4Q', syms['leaf'], syms['rec'] + 4, syms['main'] + 0x10, syms['_start'])
put('elf_symbolize', 'tiny', offsets + open(tmp('tiny'), 'rb').read())
put('elf_symbolize', 'tiny.stripped', offsets + elf)

# Text seeds from this machine.
maps = subprocess.run(['cat', '/proc/self/maps'], capture_output=True).stdout
put('proc_maps', 'cat-self', maps)
put('proc_maps', 'odd-lines', b'''\
55d0c0a00000-55d0c0a02000 r--p 00000000 08:01 1234                       /usr/bin/cat
55d0c0a02000-55d0c0a07000 r-xp 00002000 08:01 1234                       /usr/bin/my prog (deleted)
7ffd1c3f0000-7ffd1c3f2000 r-xp 00000000 00:00 0                          [vdso]
7f0000000000-7f0000001000 rwxp 00000000 00:00 0 
7f0000001000-7f0000002000 r-xp 00000000 00:00 0                          [anon:v8 code]
ffffffffff600000-ffffffffff601000 --xp 00000000 00:00 0                  [vsyscall]
garbage line
''')
kallsyms = open('/proc/kallsyms', 'rb').read().splitlines()
core = [l for l in kallsyms if b'[' not in l]
modules = [l for l in kallsyms if b'[' in l]
put('kallsyms', 'head', b'\n'.join(core[:40]) + b'\n')
put('kallsyms', 'modules', b'\n'.join(modules[:30]) + b'\n')
put('kallsyms', 'restricted', b'\n'.join(re.sub(rb'^[0-9a-f]+', b'0' * 16, l) for l in core[:10]) + b'\n')
put('kallsyms', 'rust', b'''\
ffffffff81a00000 T _RNvCs1234_6kernel4init
ffffffff81a00040 t _RNvMNtCs1234_6kernel4syncNtB2_5Mutex4lock
ffffffff81a00080 W weak_thing
ffffffffc0a01000 t nft_do_chain\t[nf_tables]
''')
put('perfmap', 'node', b'''\
3ef414d0b3a0 3c Builtin:ArgumentsAdaptorTrampoline
3ef414d0b7a0 1a4 LazyCompile:*fib /app/fib.js:3
0x3ef414d0c000 0x10 stub
3ef414d0b7a0 1a8 LazyCompile:*fib /app/fib.js:3 (recompiled)
''')
put('perfmap', 'jvm-and-mangled', b'''\
7f3c2a000100 1a0 java.lang.String::hashCode
7f3c2a000300 80 _ZN4core3ptr13drop_in_place17h0123456789abcdefE
7f3c2a000400 20 _RNvCs1234_7mycrate4main
7f3c2a000500 0 empty
bad line
''')
shutil.rmtree(TMP)
