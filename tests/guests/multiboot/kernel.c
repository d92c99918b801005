/* pyqemu's multiboot test kernel. Each part of the x86 system architecture
   is a separately selectable test (multiboot command line
   "tests=mbi,pm,paging4m,paging4k,pit,apic,exc,ring3,long,smp", default all),
   so a CPU can be brought up one part at a time. Every finding is printed
   as raw values on COM1; the host-side test compares them with what the
   architecture defines. The kernel exits through isa-debug-exit (port 0xf4)
   with the code of "exit=N" (default 16), or 0x7f after an unexpected
   exception. */

typedef unsigned char u8;
typedef unsigned short u16;
typedef unsigned int u32;
typedef unsigned long long u64;

#define COM1 0x3f8
#define EXIT_PORT 0xf4
#define APIC_BASE 0xfee00000u

/* ---- port I/O and small helpers ---- */
static inline void outb(u16 port, u8 v) { __asm__ volatile("outb %0, %1" : : "a"(v), "Nd"(port)); }
static inline u8 inb(u16 port) { u8 v; __asm__ volatile("inb %1, %0" : "=a"(v) : "Nd"(port)); return v; }
static inline void outl(u16 port, u32 v) { __asm__ volatile("outl %0, %1" : : "a"(v), "Nd"(port)); }
static inline u32 read_cr0(void) { u32 v; __asm__ volatile("mov %%cr0, %0" : "=r"(v)); return v; }
static inline u32 read_cr2(void) { u32 v; __asm__ volatile("mov %%cr2, %0" : "=r"(v)); return v; }
static inline u32 read_cr4(void) { u32 v; __asm__ volatile("mov %%cr4, %0" : "=r"(v)); return v; }
static inline void write_cr0(u32 v) { __asm__ volatile("mov %0, %%cr0" : : "r"(v) : "memory"); }
static inline void write_cr3(u32 v) { __asm__ volatile("mov %0, %%cr3" : : "r"(v) : "memory"); }
static inline void write_cr4(u32 v) { __asm__ volatile("mov %0, %%cr4" : : "r"(v) : "memory"); }
static inline u64 rdmsr(u32 msr) { u32 lo, hi; __asm__ volatile("rdmsr" : "=a"(lo), "=d"(hi) : "c"(msr)); return ((u64)hi << 32) | lo; }
static inline void cpuid(u32 leaf, u32 *a, u32 *b, u32 *c, u32 *d)
{
    __asm__ volatile("cpuid" : "=a"(*a), "=b"(*b), "=c"(*c), "=d"(*d) : "a"(leaf), "c"(0));
}
static inline u32 mmio_read(u32 addr) { return *(volatile u32 *)addr; }
static inline void mmio_write(u32 addr, u32 v) { *(volatile u32 *)addr = v; }

void *memset(void *d, int c, unsigned n)
{
    u8 *p = d;
    while (n--)
        *p++ = (u8)c;
    return d;
}

/* ---- serial output ---- */
static void serial_init(void)
{
    outb(COM1 + 1, 0x00);       /* no UART interrupts */
    outb(COM1 + 3, 0x80);       /* DLAB */
    outb(COM1 + 0, 0x01);       /* 115200 baud */
    outb(COM1 + 1, 0x00);
    outb(COM1 + 3, 0x03);       /* 8N1 */
    outb(COM1 + 2, 0xc7);       /* FIFO on, cleared */
    outb(COM1 + 4, 0x03);       /* DTR, RTS */
}

static void putc_raw(char c)
{
    while (!(inb(COM1 + 5) & 0x20))
        ;
    outb(COM1, (u8)c);
}

static void puts(const char *s)
{
    for (; *s; s++) {
        if (*s == '\n')
            putc_raw('\r');
        putc_raw(*s);
    }
}

static void puthex(u32 v, int digits)
{
    static const char hex[] = "0123456789abcdef";
    for (int i = digits - 1; i >= 0; i--)
        putc_raw(hex[(v >> (i * 4)) & 0xf]);
}

static void putdec(u32 v)
{
    char buf[12];
    int n = 0;
    do {
        buf[n++] = (char)('0' + v % 10);
        v /= 10;
    } while (v);
    while (n)
        putc_raw(buf[--n]);
}

static void puthex64(u64 v)
{
    puthex((u32)(v >> 32), 8);
    puthex((u32)v, 8);
}

/* "key=hex " pairs keep the findings easy to parse on the host */
static void kv(const char *k, u32 v)
{
    puts(" ");
    puts(k);
    puts("=");
    puthex(v, 8);
}

static void exit_qemu(u32 code)
{
    outl(EXIT_PORT, code);
    extern void triple_fault(void);
    triple_fault();
}

/* ---- descriptor tables ---- */
struct tss {
    u32 link, esp0, ss0, esp1, ss1, esp2, ss2, cr3, eip, eflags;
    u32 eax, ecx, edx, ebx, esp, ebp, esi, edi;
    u32 es, cs, ss, ds, fs, gs, ldt;
    u16 trap, iomap;
} __attribute__((packed));

static u64 gdt[16] __attribute__((aligned(16)));
static u64 idt[256] __attribute__((aligned(16)));
static struct tss tss __attribute__((aligned(16)));
static u8 ring0_stack[8192] __attribute__((aligned(16)));
static u8 user_stack[8192] __attribute__((aligned(16)));

static u64 seg_desc(u32 base, u32 limit, u32 access, u32 flags)
{
    return (limit & 0xffffull) | ((u64)(base & 0xffffff) << 16) | ((u64)(access & 0xff) << 40)
        | ((u64)((limit >> 16) & 0xf) << 48) | ((u64)(flags & 0xf) << 52) | ((u64)(base >> 24) << 56);
}

static u64 gate_desc(u32 offset, u16 sel, u8 type_attr)
{
    return (offset & 0xffffull) | ((u64)sel << 16) | ((u64)type_attr << 40) | ((u64)(offset >> 16) << 48);
}

extern void reload_segments(void);
extern void gate_entry(void);
#define ISR(n) extern void isr##n(void);
ISR(0) ISR(1) ISR(2) ISR(3) ISR(4) ISR(5) ISR(6) ISR(7) ISR(8) ISR(9) ISR(10) ISR(11) ISR(12)
ISR(13) ISR(14) ISR(15) ISR(16) ISR(17) ISR(18) ISR(19) ISR(20) ISR(21) ISR(22) ISR(23) ISR(24)
ISR(25) ISR(26) ISR(27) ISR(28) ISR(29) ISR(30) ISR(31) ISR(32) ISR(33) ISR(34) ISR(35) ISR(36)
ISR(37) ISR(38) ISR(39) ISR(40) ISR(41) ISR(42) ISR(43) ISR(44) ISR(45) ISR(46) ISR(47) ISR(64)
ISR(80) ISR(81) ISR(128) ISR(255)

static void (*const isr_table[48])(void) = {
    isr0, isr1, isr2, isr3, isr4, isr5, isr6, isr7, isr8, isr9, isr10, isr11, isr12, isr13, isr14,
    isr15, isr16, isr17, isr18, isr19, isr20, isr21, isr22, isr23, isr24, isr25, isr26, isr27,
    isr28, isr29, isr30, isr31, isr32, isr33, isr34, isr35, isr36, isr37, isr38, isr39, isr40,
    isr41, isr42, isr43, isr44, isr45, isr46, isr47,
};

static void setup_tables(void)
{
    /* Accessed bits are preset: whether a far jump sets them in memory is
       something emulators differ on, and LAR reports them. */
    gdt[0] = 0;
    gdt[1] = seg_desc(0, 0xfffff, 0x9b, 0xc);           /* 0x08 code, ring 0 */
    gdt[2] = seg_desc(0, 0xfffff, 0x93, 0xc);           /* 0x10 data, ring 0 */
    gdt[3] = seg_desc(0, 0xfffff, 0xfb, 0xc);           /* 0x18 code, ring 3 */
    gdt[4] = seg_desc(0, 0xfffff, 0xf3, 0xc);           /* 0x20 data, ring 3 */
    gdt[5] = seg_desc((u32)&tss, sizeof(tss) - 1, 0x89, 0x0);  /* 0x28 TSS */
    gdt[6] = gate_desc((u32)gate_entry, 0x08, 0xec);    /* 0x30 call gate, DPL 3 */
    gdt[7] = seg_desc(0, 0xfffff, 0x9b, 0xa);           /* 0x38 code, 64-bit */
    gdt[8] = seg_desc(0, 0xfffff, 0x12, 0xc);           /* 0x40 data, not present */
    gdt[9] = seg_desc(0x00800000, 0xfff, 0x93, 0x4);    /* 0x48 data, 4 KiB at 8 MiB */
    struct { u16 limit; u32 base; } __attribute__((packed)) gdtr = { 10 * 8 - 1, (u32)gdt };
    __asm__ volatile("lgdt %0" : : "m"(gdtr));
    reload_segments();

    for (int v = 0; v < 48; v++)
        idt[v] = gate_desc((u32)isr_table[v], 0x08, 0x8e);
    idt[64] = gate_desc((u32)isr64, 0x08, 0x8e);
    idt[80] = gate_desc((u32)isr80, 0x08, 0x8e);
    idt[81] = gate_desc((u32)isr81, 0x08, 0x8e);
    idt[128] = gate_desc((u32)isr128, 0x08, 0xee);      /* int 0x80 allowed from ring 3 */
    idt[255] = gate_desc((u32)isr255, 0x08, 0x8e);
    struct { u16 limit; u32 base; } __attribute__((packed)) idtr = { sizeof(idt) - 1, (u32)idt };
    __asm__ volatile("lidt %0" : : "m"(idtr));

    memset(&tss, 0, sizeof(tss));
    tss.ss0 = 0x10;
    tss.esp0 = (u32)(ring0_stack + sizeof(ring0_stack));
    tss.iomap = sizeof(tss);    /* no I/O bitmap: ring-3 port access faults */
    __asm__ volatile("ltr %w0" : : "r"(0x28));
}

/* ---- interrupt and exception bookkeeping ---- */
struct frame {
    u32 gs, fs, es, ds;
    u32 edi, esi, ebp, esp_unused, ebx, edx, ecx, eax;
    u32 vector, err, eip, cs, eflags, user_esp, user_ss;
};

volatile u32 recover_eip;
u32 saved_kernel_esp;
u32 gate_frame[6];

static volatile u32 exc_count, exc_vector, exc_err, exc_eip, exc_cr2, exc_cs;
static volatile u32 pic_ticks, pic_vector, pic_isr;
static volatile u32 apic_ticks, apic_vector, apic_isr;
static volatile u32 sys_count, sys_cs, sys_ss, sys_stack_ok, sys_arg;
static volatile u32 spurious;
static volatile u32 ap_count, ap_mask, bsp_back, ap_acks;
static volatile u32 ap_ipi_seen[8];

static void pic_eoi(u32 irq)
{
    if (irq >= 8)
        outb(0xa0, 0x20);
    outb(0x20, 0x20);
}

void isr_dispatch(struct frame *f);
void isr_dispatch(struct frame *f)
{
    u32 v = f->vector;
    if (v < 32) {
        exc_count++;
        exc_vector = v;
        exc_err = f->err;
        exc_eip = f->eip;
        exc_cs = f->cs;
        exc_cr2 = v == 14 ? read_cr2() : 0;
        if (!recover_eip) {
            puts("unexpected exception");
            kv("vector", v);
            kv("err", f->err);
            kv("eip", f->eip);
            kv("cr2", exc_cr2);
            puts("\n");
            exit_qemu(0x7f);
        }
        f->eip = recover_eip;
        recover_eip = 0;
    } else if (v < 48) {
        if (v == 0x20) {
            outb(0x20, 0x0b);   /* OCW3: read the in-service register */
            if (!pic_ticks)
                pic_isr = inb(0x20);
            pic_vector = v;
            pic_ticks++;
        }
        pic_eoi(v - 0x20);
    } else if (v == 64) {
        if (!apic_ticks)
            apic_isr = mmio_read(APIC_BASE + 0x120);  /* ISR bits 32..63 */
        apic_vector = v;
        apic_ticks++;
        mmio_write(APIC_BASE + 0xb0, 0);
    } else if (v == 80) {           /* BSP -> AP */
        ap_ipi_seen[(mmio_read(APIC_BASE + 0x20) >> 24) & 7]++;
        mmio_write(APIC_BASE + 0xb0, 0);
    } else if (v == 81) {           /* AP -> BSP */
        __sync_fetch_and_add(&bsp_back, 1);
        mmio_write(APIC_BASE + 0xb0, 0);
    } else if (v == 128) {
        sys_count++;
        sys_cs = f->cs;
        sys_ss = f->user_ss;
        sys_arg = f->ebx;
        /* the CPU switched to the TSS's ring-0 stack: the frame ends at esp0 */
        sys_stack_ok = (u32)(&f->user_ss + 1) == tss.esp0;
        if (f->eax == 1)
            puts((const char *)f->ebx);
        f->eax = f->eax + 0x100;
    } else {
        spurious++;
    }
}

/* ---- the command line ---- */
static const char *cmdline = "";

static int word_eq(const char *a, const char *b, int n)
{
    for (int i = 0; i < n; i++)
        if (a[i] != b[i])
            return 0;
    return 1;
}

static const char *find_opt(const char *key)
{
    int klen = 0;
    while (key[klen])
        klen++;
    for (const char *p = cmdline; *p; p++)
        if ((p == cmdline || p[-1] == ' ') && word_eq(p, key, klen))
            return p + klen;
    return 0;
}

static int selected(const char *name)
{
    const char *list = find_opt("tests=");
    if (!list)
        return 1;
    int n = 0;
    while (name[n])
        n++;
    const char *p = list;
    while (*p && *p != ' ') {
        const char *e = p;
        while (*e && *e != ' ' && *e != ',')
            e++;
        if (e - p == n && word_eq(p, name, n))
            return 1;
        p = *e == ',' ? e + 1 : e;
    }
    return 0;
}

/* ---- tests ---- */
struct mb_info {
    u32 flags, mem_lower, mem_upper, boot_device, cmdline, mods_count, mods_addr;
    u32 syms[4];
    u32 mmap_length, mmap_addr, drives_length, drives_addr, config_table, boot_loader_name;
};
struct mb_mod { u32 start, end, string, reserved; };

static void putstr_q(const char *s)
{
    puts("\"");
    puts(s);
    puts("\"");
}

static void test_mbi(u32 magic, struct mb_info *mbi)
{
    puts("mbi: magic=");
    puthex(magic, 8);
    kv("flags", mbi->flags);
    puts("\n");
    if (mbi->flags & 1) {
        puts("mbi: mem_lower=");
        putdec(mbi->mem_lower);
        puts(" mem_upper=");
        putdec(mbi->mem_upper);
        puts("\n");
    }
    if (mbi->flags & 2) {
        puts("mbi: boot_device=");
        puthex(mbi->boot_device, 8);
        puts("\n");
    }
    if (mbi->flags & 4) {
        puts("mbi: cmdline=");
        putstr_q((const char *)mbi->cmdline);
        puts("\n");
    }
    if (mbi->flags & 8) {
        struct mb_mod *m = (struct mb_mod *)mbi->mods_addr;
        puts("mbi: mods_count=");
        putdec(mbi->mods_count);
        puts("\n");
        for (u32 i = 0; i < mbi->mods_count; i++) {
            u32 sum = 0;
            for (u32 a = m[i].start; a < m[i].end; a++)
                sum = sum * 31 + *(u8 *)a;
            puts("mbi: mod");
            putdec(i);
            kv("start", m[i].start);
            kv("end", m[i].end);
            kv("sum", sum);
            puts(" string=");
            putstr_q((const char *)m[i].string);
            puts("\n");
        }
    }
    if (mbi->flags & 0x40) {
        u32 p = mbi->mmap_addr, end = mbi->mmap_addr + mbi->mmap_length;
        while (p < end) {
            u32 size = *(u32 *)p;
            u64 base = *(u64 *)(p + 4), len = *(u64 *)(p + 12);
            u32 type = *(u32 *)(p + 20);
            puts("mbi: mmap base=");
            puthex64(base);
            puts(" len=");
            puthex64(len);
            kv("type", type);
            puts("\n");
            p += size + 4;
        }
    }
    if (mbi->flags & 0x200) {
        puts("mbi: boot_loader_name=");
        putstr_q((const char *)mbi->boot_loader_name);
        puts("\n");
    }
}

static u32 lar(u32 sel) { u32 v = 0; __asm__ volatile("lar %1, %0" : "=r"(v) : "r"(sel)); return v; }
static u32 lsl(u32 sel) { u32 v = 0; __asm__ volatile("lsl %1, %0" : "=r"(v) : "r"(sel)); return v; }
extern void seg_base_test(void);

static void test_pm(void)
{
    u16 cs, ds, ss, tr;
    struct { u16 limit; u32 base; } __attribute__((packed)) g, i;
    __asm__ volatile("mov %%cs, %0; mov %%ds, %1; mov %%ss, %2; str %3" : "=r"(cs), "=r"(ds), "=r"(ss), "=r"(tr));
    __asm__ volatile("sgdt %0; sidt %1" : "=m"(g), "=m"(i));
    puts("pm:");
    kv("cr0.pe", read_cr0() & 1);
    kv("cs", cs);
    kv("ds", ds);
    kv("ss", ss);
    kv("tr", tr);
    kv("gdt_limit", g.limit);
    kv("gdt_ok", g.base == (u32)gdt);
    kv("idt_limit", i.limit);
    kv("idt_ok", i.base == (u32)idt);
    puts("\n");
    puts("pm:");
    kv("lar08", lar(0x08));
    kv("lar10", lar(0x10));
    kv("lar1b", lar(0x1b));
    kv("lsl10", lsl(0x10));
    kv("lsl48", lsl(0x48));
    kv("tss_type", (u32)(gdt[5] >> 40) & 0xf);
    puts("\n");
    /* a based segment: ES base 8 MiB */
    *(volatile u32 *)0x00800010 = 0;
    seg_base_test();
    puts("pm: seg_base_write=");
    puthex(*(volatile u32 *)0x00800010, 8);
    puts("\n");
}

/* Paging structures live in .bss, identity-mapped like the rest. */
static u32 pd[1024] __attribute__((aligned(4096)));
static u32 pt_low[1024] __attribute__((aligned(4096)));   /* 0..4 MiB */
static u32 pt_mid[1024] __attribute__((aligned(4096)));   /* 8..12 MiB */
static u32 pt_test[1024] __attribute__((aligned(4096)));  /* 0x40000000.. */
static u8 supervisor_page[4096] __attribute__((aligned(4096)));

#define PG_P 1u
#define PG_RW 2u
#define PG_US 4u
#define PG_A 0x20u
#define PG_D 0x40u
#define PG_PS 0x80u

extern u32 do_read(u32 addr);
extern void do_write(u32 addr, u32 val);
extern char read_insn[], write_insn[];

static void paging_off(void)
{
    write_cr0(read_cr0() & ~0x80010000u);   /* PG and WP */
    write_cr4(read_cr4() & ~0x10u);
    write_cr3(0);
}

static void report_fault(const char *what)
{
    puts(what);
    kv("vector", exc_count ? exc_vector : 0xffffffff);
    kv("err", exc_err);
    kv("cr2", exc_cr2);
    puts("\n");
}

static void test_paging4m(void)
{
    memset(pd, 0, sizeof(pd));
    for (u32 i = 0; i < 4; i++)   /* identity 0..16 MiB */
        pd[i] = (i << 22) | PG_PS | PG_P | PG_RW | PG_US;
    pd[0x100] = 0x00800000 | PG_PS | PG_P | PG_RW;   /* 0x40000000 -> 8 MiB */
    pd[0x101] = 0x00800000 | PG_PS | PG_P;           /* read-only alias */
    *(volatile u32 *)0x00800020 = 0;
    write_cr4(read_cr4() | 0x10);   /* PSE */
    write_cr3((u32)pd);
    write_cr0(read_cr0() | 0x80000000u);
    *(volatile u32 *)0x40000020 = 0x4a4a0001;
    u32 via_identity = *(volatile u32 *)0x00800020;
    u32 via_ro = *(volatile u32 *)0x40400020;
    puts("paging4m:");
    kv("cr0.pg", read_cr0() >> 31);
    kv("identity", via_identity);
    kv("ro_alias", via_ro);
    kv("pde100_ad", (pd[0x100] >> 5) & 3);
    kv("pde101_ad", (pd[0x101] >> 5) & 3);
    kv("pde2_ad", (pd[2] >> 5) & 3);
    puts("\n");
    /* CR0.WP=0: ring 0 may write a read-only page; WP=1 makes it fault */
    exc_count = 0;
    do_write(0x40400024, 0x4a4a0002);
    puts("paging4m: wp0_write=");
    puthex(*(volatile u32 *)0x00800024, 8);
    kv("faults", exc_count);
    puts("\n");
    write_cr0(read_cr0() | 0x10000u);
    exc_count = 0;
    do_write(0x40400028, 0x4a4a0003);
    report_fault("paging4m: wp1_write");
    exc_count = 0;
    do_read(0x7fc00000 + 0x123);
    report_fault("paging4m: unmapped_read");
    paging_off();
}

static void test_paging4k(void)
{
    memset(pd, 0, sizeof(pd));
    for (u32 i = 0; i < 1024; i++) {
        pt_low[i] = (i << 12) | PG_P | PG_RW | PG_US;
        pt_mid[i] = (0x00800000 + (i << 12)) | PG_P | PG_RW | PG_US;
    }
    pt_low[0] = 0;   /* page 0 unmapped: NULL faults */
    memset(pt_test, 0, sizeof(pt_test));
    pt_test[0] = 0x00801000 | PG_P | PG_RW;
    pt_test[1] = 0x00802000 | PG_P;
    pd[0] = (u32)pt_low | PG_P | PG_RW | PG_US;
    pd[2] = (u32)pt_mid | PG_P | PG_RW | PG_US;
    pd[0x100] = (u32)pt_test | PG_P | PG_RW;
    *(volatile u32 *)0x00801000 = 0x4b000001;
    *(volatile u32 *)0x00802000 = 0x4b000002;
    write_cr3((u32)pd);
    write_cr0(read_cr0() | 0x80000000u);
    u32 r0 = *(volatile u32 *)0x40000000;
    *(volatile u32 *)0x40000004 = 0x4b000003;
    u32 r1 = *(volatile u32 *)0x40001000;
    puts("paging4k:");
    kv("read0", r0);
    kv("read1", r1);
    kv("written", *(volatile u32 *)0x00801004);
    kv("pte0_ad", (pt_test[0] >> 5) & 3);
    kv("pte1_ad", (pt_test[1] >> 5) & 3);
    kv("pde_a", (pd[0x100] >> 5) & 1);
    puts("\n");
    /* remap page 0 and flush it: the new frame is seen */
    pt_test[0] = 0x00802000 | PG_P | PG_RW;
    __asm__ volatile("invlpg (%0)" : : "r"(0x40000000) : "memory");
    puts("paging4k:");
    kv("after_invlpg", *(volatile u32 *)0x40000000);
    puts("\n");
    exc_count = 0;
    do_read(0x40002abc);
    report_fault("paging4k: not_present_read");
    exc_count = 0;
    do_write(0x40002ff8, 1);
    report_fault("paging4k: not_present_write");
    exc_count = 0;
    do_read(0x10);
    report_fault("paging4k: null_read");
    paging_off();
}

static void pic_init(void)
{
    outb(0x20, 0x11);
    outb(0xa0, 0x11);
    outb(0x21, 0x20);   /* master vectors 0x20-0x27 */
    outb(0xa1, 0x28);   /* slave vectors 0x28-0x2f */
    outb(0x21, 0x04);
    outb(0xa1, 0x02);
    outb(0x21, 0x01);
    outb(0xa1, 0x01);
    outb(0x21, 0xff);
    outb(0xa1, 0xff);
}

static void wait_ticks(volatile u32 *counter, u32 n)
{
    /* STI;HLT: the interrupt that ends the HLT is taken after it */
    while (*counter < n)
        __asm__ volatile("sti; hlt; cli");
}

static void test_pit(void)
{
    pic_ticks = 0;
    outb(0x43, 0x34);           /* channel 0, lo/hi, mode 2 */
    outb(0x40, 1193 & 0xff);    /* about 1 kHz */
    outb(0x40, 1193 >> 8);
    outb(0x21, 0xfe);           /* unmask IRQ 0 */
    wait_ticks(&pic_ticks, 10);
    outb(0x21, 0xff);
    outb(0x43, 0x30);           /* channel 0 back to mode 0, stopped */
    outb(0x40, 0);
    outb(0x40, 0);
    outb(0x20, 0x0b);
    u32 isr_after = inb(0x20);
    puts("pit:");
    kv("ticks", pic_ticks >= 10);
    kv("vector", pic_vector);
    kv("isr_in_handler", pic_isr);
    kv("isr_after", isr_after);
    puts("\n");
}

static void test_apic(void)
{
    u32 a, b, c, d;
    cpuid(1, &a, &b, &c, &d);
    u64 base = rdmsr(0x1b);
    mmio_write(APIC_BASE + 0xf0, 0x1ff);    /* software enable, spurious 0xff */
    mmio_write(APIC_BASE + 0x80, 0);        /* TPR */
    puts("apic:");
    kv("cpuid_apic", (d >> 9) & 1);
    kv("base_msr", (u32)base);
    kv("id", mmio_read(APIC_BASE + 0x20) >> 24);
    kv("version", mmio_read(APIC_BASE + 0x30));
    kv("svr", mmio_read(APIC_BASE + 0xf0));
    puts("\n");
    apic_ticks = 0;
    mmio_write(APIC_BASE + 0x3e0, 0xb);     /* divide by 1 */
    mmio_write(APIC_BASE + 0x320, 0x40);    /* one-shot, vector 0x40 */
    mmio_write(APIC_BASE + 0x380, 100000);
    wait_ticks(&apic_ticks, 1);
    u32 oneshot_count = mmio_read(APIC_BASE + 0x390);
    apic_ticks = 0;
    mmio_write(APIC_BASE + 0x320, 0x20040); /* periodic */
    mmio_write(APIC_BASE + 0x380, 100000);
    wait_ticks(&apic_ticks, 3);
    mmio_write(APIC_BASE + 0x320, 0x10040); /* masked */
    mmio_write(APIC_BASE + 0x380, 0);
    puts("apic:");
    kv("vector", apic_vector);
    kv("isr_in_handler", apic_isr);
    kv("oneshot_count_after", oneshot_count);
    kv("periodic_ticks", apic_ticks >= 3);
    kv("isr_after", mmio_read(APIC_BASE + 0x120));
    kv("lvt_timer", mmio_read(APIC_BASE + 0x320));
    puts("\n");
}

extern void do_de(void), do_ud(void), do_bp(void), do_of(void), do_gp_sel(void), do_np(void);
extern char de_insn[], ud_insn[], bp_after[], of_after[], gp_sel_insn[], np_insn[];

static void report_exc(const char *name, void (*fn)(void), char *expect_eip)
{
    exc_count = 0;
    fn();
    puts("exc: ");
    puts(name);
    kv("count", exc_count);
    kv("vector", exc_vector);
    kv("err", exc_err);
    kv("eip_ok", exc_eip == (u32)expect_eip);
    kv("cs", exc_cs);
    puts("\n");
}

static void test_exc(void)
{
    report_exc("de", do_de, de_insn);
    report_exc("bp", do_bp, bp_after);
    report_exc("of", do_of, of_after);
    report_exc("ud", do_ud, ud_insn);
    report_exc("np", do_np, np_insn);
    report_exc("gp", do_gp_sel, gp_sel_insn);
    /* #PF with paging: 4 KiB identity map with one not-present page */
    memset(pd, 0, sizeof(pd));
    for (u32 i = 0; i < 1024; i++)
        pt_low[i] = (i << 12) | PG_P | PG_RW | PG_US;
    pt_low[0x3ff] = 0;
    pd[0] = (u32)pt_low | PG_P | PG_RW | PG_US;
    write_cr3((u32)pd);
    write_cr0(read_cr0() | 0x80000000u);
    exc_count = 0;
    do_write(0x003ff123, 7);
    puts("exc: pf");
    kv("count", exc_count);
    kv("vector", exc_vector);
    kv("err", exc_err);
    kv("cr2", exc_cr2);
    kv("eip_ok", exc_eip == (u32)write_insn);
    puts("\n");
    paging_off();
}

/* ---- ring 3 ---- */
extern void enter_user(void (*entry)(void), u32 user_esp);
extern void do_priv(void);
extern char priv_insn[];
static volatile u32 user_cs, user_cpl, user_sys_ret, user_priv_vec, user_priv_err, user_priv_ok;
static volatile u32 user_pf_vec, user_pf_err, user_pf_cr2;

static u32 syscall1(u32 nr, u32 arg)
{
    u32 ret;
    __asm__ volatile("int $0x80" : "=a"(ret) : "a"(nr), "b"(arg) : "memory");
    return ret;
}

static void user_main(void)
{
    u16 cs;
    __asm__ volatile("mov %%cs, %0" : "=r"(cs));
    user_cs = cs;
    user_cpl = cs & 3;
    user_sys_ret = syscall1(1, (u32)"ring3: hello from ring 3 via int 0x80\n");
    exc_count = 0;
    do_priv();
    user_priv_vec = exc_vector;
    user_priv_err = exc_err;
    user_priv_ok = exc_eip == (u32)priv_insn && (exc_cs & 3) == 3;
    exc_count = 0;
    do_read((u32)supervisor_page + 0x40);
    user_pf_vec = exc_vector;
    user_pf_err = exc_err;
    user_pf_cr2 = exc_cr2;
    __asm__ volatile("lcall $0x33, $0");    /* back to ring 0 through the call gate */
}

static void test_ring3(void)
{
    /* paging with every page user-accessible except supervisor_page */
    memset(pd, 0, sizeof(pd));
    for (u32 i = 0; i < 1024; i++)
        pt_low[i] = (i << 12) | PG_P | PG_RW | PG_US;
    pt_low[(u32)supervisor_page >> 12] &= ~PG_US;
    pd[0] = (u32)pt_low | PG_P | PG_RW | PG_US;
    write_cr3((u32)pd);
    write_cr0(read_cr0() | 0x80000000u);
    enter_user(user_main, (u32)(user_stack + sizeof(user_stack)));
    paging_off();
    u16 cs;
    __asm__ volatile("mov %%cs, %0" : "=r"(cs));
    puts("ring3:");
    kv("cs", user_cs);
    kv("cpl", user_cpl);
    kv("syscall_ret", user_sys_ret);
    kv("syscalls", sys_count);
    kv("int80_cs", sys_cs);
    kv("int80_ss", sys_ss);
    kv("int80_stack_is_esp0", sys_stack_ok);
    puts("\n");
    puts("ring3:");
    kv("cli_vector", user_priv_vec);
    kv("cli_err", user_priv_err);
    kv("cli_at_insn", user_priv_ok);
    kv("pf_vector", user_pf_vec);
    kv("pf_err", user_pf_err);
    kv("pf_cr2_ok", user_pf_cr2 == (u32)supervisor_page + 0x40);
    puts("\n");
    puts("ring3:");
    kv("gate_cs", gate_frame[1]);
    kv("gate_ss", gate_frame[3]);
    kv("gate_stack_is_esp0", gate_frame[4] + 16 == tss.esp0);
    kv("gate_ring0_cs", gate_frame[5]);
    kv("back_cs", cs);
    puts("\n");
}

/* ---- long mode ---- */
extern void long_mode_run(u32 pml4, u64 *results);
static u64 pml4[512] __attribute__((aligned(4096)));
static u64 pdpt_low[512] __attribute__((aligned(4096)));
static u64 pd_low[512] __attribute__((aligned(4096)));
static u64 pdpt_high[512] __attribute__((aligned(4096)));
static u64 pd_high[512] __attribute__((aligned(4096)));
static u64 pt_high[512] __attribute__((aligned(4096)));
static u64 lm_results[16];

static void test_long(void)
{
    u32 a, b, c, d;
    cpuid(0x80000001, &a, &b, &c, &d);
    memset(pml4, 0, sizeof(pml4));
    memset(pdpt_low, 0, sizeof(pdpt_low));
    memset(pd_low, 0, sizeof(pd_low));
    memset(pdpt_high, 0, sizeof(pdpt_high));
    memset(pd_high, 0, sizeof(pd_high));
    memset(pt_high, 0, sizeof(pt_high));
    for (u32 i = 0; i < 8; i++)   /* identity 0..16 MiB in 2 MiB pages */
        pd_low[i] = (u64)(i << 21) | PG_PS | PG_P | PG_RW;
    pdpt_low[0] = (u32)pd_low | PG_P | PG_RW;
    pml4[0] = (u32)pdpt_low | PG_P | PG_RW;
    pt_high[1] = 0x00900000 | PG_P | PG_RW;
    pd_high[0] = (u32)pt_high | PG_P | PG_RW;
    pdpt_high[0] = (u32)pd_high | PG_P | PG_RW;
    pml4[511] = (u32)pdpt_high | PG_P | PG_RW;
    *(volatile u32 *)0x00900008 = 0;
    *(volatile u32 *)0x0090000c = 0;
    memset(lm_results, 0, sizeof(lm_results));
    long_mode_run((u32)pml4, lm_results);
    puts("long:");
    kv("cpuid_lm", (d >> 29) & 1);
    kv("cs", (u32)lm_results[0]);
    kv("efer_in", (u32)lm_results[1]);
    kv("efer_after", (u32)lm_results[11] & 0x500);
    kv("cr0.pg_after", read_cr0() >> 31);
    puts("\n");
    puts("long: imul=");
    puthex64(lm_results[2]);
    puts(" mul_lo=");
    puthex64(lm_results[3]);
    puts(" mul_hi=");
    puthex64(lm_results[4]);
    puts("\n");
    puts("long: div_q=");
    puthex64(lm_results[5]);
    puts(" div_r=");
    puthex64(lm_results[6]);
    puts(" rol=");
    puthex64(lm_results[7]);
    puts("\n");
    puts("long: push_size=");
    puthex64(lm_results[8]);
    puts(" push_val=");
    puthex64(lm_results[9]);
    puts(" high_read=");
    puthex64(lm_results[10]);
    puts(" phys=");
    puthex(*(volatile u32 *)0x0090000c, 8);
    puthex(*(volatile u32 *)0x00900008, 8);
    puts("\n");
    puts("long:");
    kv("pte_high_ad", (u32)(pt_high[1] >> 5) & 3);
    kv("pml4_511_a", (u32)(pml4[511] >> 5) & 1);
    puts("\n");
}

/* ---- SMP: INIT/SIPI, IPIs both ways ---- */
extern char ap_trampoline[], ap_trampoline_end[], ap_gdtr[];
void ap_main(u32 id);

static u32 fw_cfg_u16(u16 key)
{
    __asm__ volatile("outw %0, %1" : : "a"(key), "Nd"((u16)0x510));
    u32 lo = inb(0x511);
    return lo | ((u32)inb(0x511) << 8);
}

static void send_ipi(u32 dest, u32 low)
{
    mmio_write(APIC_BASE + 0x310, dest << 24);
    mmio_write(APIC_BASE + 0x300, low);
}

void ap_main(u32 id)
{
    struct { u16 limit; u32 base; } __attribute__((packed)) idtr = { sizeof(idt) - 1, (u32)idt };
    __asm__ volatile("lidt %0" : : "m"(idtr));
    mmio_write(APIC_BASE + 0xf0, 0x1ff);
    __sync_fetch_and_or(&ap_mask, 1u << id);
    __sync_fetch_and_add(&ap_count, 1);
    while (!ap_ipi_seen[id])
        __asm__ volatile("sti; hlt; cli");
    /* IPIs of one vector coalesce in the BSP's IRR: count the answers here */
    __sync_fetch_and_add(&ap_acks, 1);
    send_ipi(0, 0x4051);
    for (;;)
        __asm__ volatile("cli; hlt");
}

static void test_smp(void)
{
    u32 n = fw_cfg_u16(0x05);
    puts("smp:");
    kv("cpus", n);
    puts("\n");
    if (n < 2 || n > 8)
        return;
    u8 *dst = (u8 *)0x8000;
    for (char *p = ap_trampoline; p < ap_trampoline_end; p++)
        *dst++ = (u8)*p;
    struct { u16 limit; u32 base; } __attribute__((packed)) g = { 10 * 8 - 1, (u32)gdt };
    u8 *gd = (u8 *)0x8000 + (ap_gdtr - ap_trampoline);
    for (u32 i = 0; i < 6; i++)
        gd[i] = ((u8 *)&g)[i];
    mmio_write(APIC_BASE + 0xf0, 0x1ff);
    for (u32 id = 1; id < n; id++) {
        send_ipi(id, 0x4500);               /* INIT */
        send_ipi(id, 0x4608);               /* start-up at 0800:0000 */
        send_ipi(id, 0x4608);               /* the second one is ignored */
    }
    for (u32 spins = 0; ap_count < n - 1 && spins < 100000000; spins++)
        __asm__ volatile("pause");
    puts("smp:");
    kv("started", ap_count);
    kv("ap_mask", ap_mask);
    puts("\n");
    for (u32 id = 1; id < n; id++)
        send_ipi(id, 0x4050);
    __asm__ volatile("sti");                /* the answers are interrupts */
    for (u32 spins = 0; (ap_acks < n - 1 || !bsp_back) && spins < 100000000; spins++)
        __asm__ volatile("pause");
    __asm__ volatile("cli");
    u32 seen = 0;
    for (u32 id = 1; id < n; id++)
        seen += ap_ipi_seen[id];
    puts("smp:");
    kv("ipis_to_aps", seen);
    kv("acks", ap_acks);
    kv("ipi_back", bsp_back != 0);
    puts("\n");
}

static u32 parse_dec(const char *p)
{
    u32 v = 0;
    while (*p >= '0' && *p <= '9')
        v = v * 10 + (u32)(*p++ - '0');
    return v;
}

void kmain(u32 magic, struct mb_info *mbi);
void kmain(u32 magic, struct mb_info *mbi)
{
    serial_init();
    if (magic == 0x2BADB002 && (mbi->flags & 4))
        cmdline = (const char *)mbi->cmdline;
    puts("mbtest: start\n");
    setup_tables();
    pic_init();
    if (selected("mbi"))
        test_mbi(magic, mbi);
    if (selected("pm"))
        test_pm();
    if (selected("paging4m"))
        test_paging4m();
    if (selected("paging4k"))
        test_paging4k();
    if (selected("pit"))
        test_pit();
    if (selected("apic"))
        test_apic();
    if (selected("exc"))
        test_exc();
    if (selected("ring3"))
        test_ring3();
    if (selected("long"))
        test_long();
    if (selected("smp"))
        test_smp();
    const char *e = find_opt("exit=");
    u32 code = e ? parse_dec(e) : 16;
    puts("mbtest: done exit=");
    putdec(code);
    puts("\n");
    exit_qemu(code);
}
