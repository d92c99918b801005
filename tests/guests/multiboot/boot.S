/* Entry, interrupt stubs and the parts of the multiboot test kernel that
   C cannot express: segment reloads, the ring-3 entry and call-gate return,
   the instructions that must fault at a known address, and long mode. */

#define MB_MAGIC 0x1BADB002
#ifdef MB_AOUT_KLUDGE
/* the header's address fields (flag 16) tell the loader where the image
   goes, instead of the ELF program headers */
#define MB_FLAGS 0x00010003
#else
#define MB_FLAGS 0x00000003     /* page-aligned modules, memory info */
#endif

    .section .multiboot, "a"
    .align 4
mb_header:
    .long MB_MAGIC
    .long MB_FLAGS
    .long -(MB_MAGIC + MB_FLAGS)
#ifdef MB_AOUT_KLUDGE
    .long mb_header             /* header_addr */
    .long _load_start           /* load_addr */
    .long _load_end             /* load_end_addr */
    .long _bss_end              /* bss_end_addr */
    .long _start                /* entry_addr */
#endif

    .text
    .globl _start
_start:
    cli
    cld
    movl $boot_stack_top, %esp
    pushl %ebx                  /* multiboot info */
    pushl %eax                  /* loader magic */
    call kmain
1:  cli
    hlt
    jmp 1b

/* Reload CS with a far jump and the data segments after lgdt. */
    .globl reload_segments
reload_segments:
    ljmp $0x08, $1f
1:  movw $0x10, %ax
    movw %ax, %ds
    movw %ax, %es
    movw %ax, %fs
    movw %ax, %gs
    movw %ax, %ss
    ret

/* Interrupt stubs: every vector gets a frame with an error-code slot. */
.macro ISR_NOERR n
    .globl isr\n
isr\n:
    pushl $0
    pushl $\n
    jmp isr_common
.endm
.macro ISR_ERR n
    .globl isr\n
isr\n:
    pushl $\n
    jmp isr_common
.endm

ISR_NOERR 0
ISR_NOERR 1
ISR_NOERR 2
ISR_NOERR 3
ISR_NOERR 4
ISR_NOERR 5
ISR_NOERR 6
ISR_NOERR 7
ISR_ERR 8
ISR_NOERR 9
ISR_ERR 10
ISR_ERR 11
ISR_ERR 12
ISR_ERR 13
ISR_ERR 14
ISR_NOERR 15
ISR_NOERR 16
ISR_ERR 17
ISR_NOERR 18
ISR_NOERR 19
ISR_NOERR 20
ISR_NOERR 21
ISR_NOERR 22
ISR_NOERR 23
ISR_NOERR 24
ISR_NOERR 25
ISR_NOERR 26
ISR_NOERR 27
ISR_NOERR 28
ISR_NOERR 29
ISR_ERR 30
ISR_NOERR 31
ISR_NOERR 32
ISR_NOERR 33
ISR_NOERR 34
ISR_NOERR 35
ISR_NOERR 36
ISR_NOERR 37
ISR_NOERR 38
ISR_NOERR 39
ISR_NOERR 40
ISR_NOERR 41
ISR_NOERR 42
ISR_NOERR 43
ISR_NOERR 44
ISR_NOERR 45
ISR_NOERR 46
ISR_NOERR 47
ISR_NOERR 64
ISR_NOERR 80
ISR_NOERR 81
ISR_NOERR 128
ISR_NOERR 255

isr_common:
    pushal
    pushl %ds
    pushl %es
    pushl %fs
    pushl %gs
    movw $0x10, %ax
    movw %ax, %ds
    movw %ax, %es
    movw %ax, %fs
    movw %ax, %gs
    pushl %esp
    call isr_dispatch
    addl $4, %esp
    popl %gs
    popl %fs
    popl %es
    popl %ds
    popal
    addl $8, %esp
    iret

/* enter_user(entry, user_esp): iret to ring 3; the user code comes back
   through the call gate to gate_entry, which returns from here. */
    .globl enter_user
enter_user:
    pushl %ebp
    pushl %ebx
    pushl %esi
    pushl %edi
    movl %esp, saved_kernel_esp
    movl 20(%esp), %eax         /* entry */
    movl 24(%esp), %ecx         /* user stack */
    pushl $0x23
    pushl %ecx
    pushl $0x002                /* EFLAGS: IF=0, IOPL=0 */
    pushl $0x1b
    pushl %eax
    movw $0x23, %ax
    movw %ax, %ds
    movw %ax, %es
    movw %ax, %fs
    movw %ax, %gs
    iret

/* Target of the call gate: the CPU switched to the TSS's ring-0 stack and
   pushed the caller's SS, ESP, CS and EIP. Record them and return to the
   kernel context enter_user saved. */
    .globl gate_entry
gate_entry:
    movw $0x10, %ax
    movw %ax, %ds
    movw %ax, %es
    movw %ax, %fs
    movw %ax, %gs
    movl 0(%esp), %eax
    movl %eax, gate_frame
    movl 4(%esp), %eax
    movl %eax, gate_frame+4
    movl 8(%esp), %eax
    movl %eax, gate_frame+8
    movl 12(%esp), %eax
    movl %eax, gate_frame+12
    movl %esp, gate_frame+16
    movw %cs, %ax
    movzwl %ax, %eax
    movl %eax, gate_frame+20
    movl saved_kernel_esp, %esp
    popl %edi
    popl %esi
    popl %ebx
    popl %ebp
    ret

/* Instructions that must fault. recover_eip tells the exception handler
   where to resume; the *_insn labels are the addresses a fault reports. */
.macro FAULT_SITE name
    .globl \name
\name:
.endm

FAULT_SITE do_de
    movl $1f, recover_eip
    xorl %ecx, %ecx
    xorl %edx, %edx
    movl $1, %eax
    .globl de_insn
de_insn:
    divl %ecx
1:  ret

FAULT_SITE do_ud
    movl $1f, recover_eip
    .globl ud_insn
ud_insn:
    ud2
1:  ret

FAULT_SITE do_bp
    movl $1f, recover_eip
    int3
    .globl bp_after
bp_after:
    nop
1:  ret

FAULT_SITE do_of
    movl $1f, recover_eip
    movl $0x7fffffff, %eax
    addl $1, %eax
    into
    .globl of_after
of_after:
    nop
1:  ret

FAULT_SITE do_gp_sel            /* selector beyond the GDT limit */
    movl $1f, recover_eip
    movw $0x1230, %ax
    .globl gp_sel_insn
gp_sel_insn:
    movw %ax, %es
1:  movw $0x10, %ax
    movw %ax, %es
    ret

FAULT_SITE do_np                /* segment marked not present */
    movl $1f, recover_eip
    movw $0x40, %ax
    .globl np_insn
np_insn:
    movw %ax, %fs
1:  movw $0x10, %ax
    movw %ax, %fs
    ret

/* seg_base_test(): ES = small data segment based at 8 MiB; a store at
   ES:0x10 lands at 8 MiB + 0x10. (QEMU's TCG does not enforce data segment
   limits, so a store beyond the limit is not part of the test.) */
FAULT_SITE seg_base_test
    movw $0x48, %ax
    movw %ax, %es
    movl $0x5e6a0001, %es:0x10
    movw $0x10, %ax
    movw %ax, %es
    ret

FAULT_SITE do_read              /* u32 do_read(u32 addr) */
    movl 4(%esp), %edx
    movl $0xdeadbeef, %eax
    movl $1f, recover_eip
    .globl read_insn
read_insn:
    movl (%edx), %eax
1:  movl $0, recover_eip
    ret

FAULT_SITE do_write             /* void do_write(u32 addr, u32 val) */
    movl 4(%esp), %edx
    movl 8(%esp), %eax
    movl $1f, recover_eip
    .globl write_insn
write_insn:
    movl %eax, (%edx)
1:  movl $0, recover_eip
    ret

FAULT_SITE do_priv              /* CLI at CPL 3 with IOPL 0 */
    movl $1f, recover_eip
    .globl priv_insn
priv_insn:
    cli
1:  ret

/* long_mode_run(pml4, results): paging off on entry. Enable PAE, LME and
   paging, far-jump to the 64-bit segment, compute, come back through a
   32-bit compatibility-mode segment and leave long mode again. */
    .globl long_mode_run
long_mode_run:
    pushl %ebp
    pushl %ebx
    pushl %esi
    pushl %edi
    movl 20(%esp), %eax
    movl 24(%esp), %esi
    movl %cr4, %ecx
    orl $0x20, %ecx             /* PAE */
    movl %ecx, %cr4
    movl %eax, %cr3
    movl $0xc0000080, %ecx
    rdmsr
    orl $0x100, %eax            /* LME */
    wrmsr
    movl %cr0, %eax
    orl $0x80000000, %eax
    movl %eax, %cr0
    ljmp $0x38, $lm64
    .code64
lm64:
    movl %esi, %esi             /* upper halves are undefined across the switch */
    movl %esp, %esp
    movw %cs, %ax
    movzwq %ax, %rax
    movq %rax, 0(%rsi)
    movl $0xc0000080, %ecx
    rdmsr
    movl %eax, 8(%rsi)
    movabsq $0x123456789abcdef0, %rax
    movabsq $0x0fedcba987654321, %rbx
    movq %rax, %r8
    imulq %rbx, %r8             /* low 64 bits of the product */
    movq %r8, 16(%rsi)
    mulq %rbx                   /* full 128-bit product in RDX:RAX */
    movq %rax, 24(%rsi)
    movq %rdx, 32(%rsi)
    movabsq $0xfedcba9876543210, %rax
    xorl %edx, %edx
    movq $1000000007, %r9
    divq %r9
    movq %rax, 40(%rsi)
    movq %rdx, 48(%rsi)
    movabsq $0x8000000000000001, %r10
    rolq $4, %r10
    movq %r10, 56(%rsi)
    movq %rsp, %r11
    pushq $-1
    subq %rsp, %r11             /* a push in 64-bit mode moves RSP by 8 */
    popq %rax
    movq %r11, 64(%rsi)
    movq %rax, 72(%rsi)
    /* write through the high half of the address space (PML4 entry 511) */
    movabsq $0xffffff8000001008, %rdi
    movabsq $0x1122334455667788, %rax
    movq %rax, (%rdi)
    movq (%rdi), %r12
    movq %r12, 80(%rsi)
    pushq $0x08
    movl $compat32, %eax       /* a 32-bit relocation; pushq $sym would need a 64-bit one */
    pushq %rax
    lretq
    .code32
compat32:
    movl %cr0, %eax
    andl $0x7fffffff, %eax      /* paging off leaves long mode (LMA=0) */
    movl %eax, %cr0
    movl $0xc0000080, %ecx
    rdmsr
    andl $~0x100, %eax
    wrmsr
    movl %eax, 88(%esi)
    movl %cr4, %eax
    andl $~0x20, %eax
    movl %eax, %cr4
    movw $0x10, %ax
    movw %ax, %ds
    movw %ax, %es
    movw %ax, %ss
    popl %edi
    popl %esi
    popl %ebx
    popl %ebp
    ret

/* The application processors' start: copied to 0x8000 and entered at
   0800:0000 by the start-up IPI (vector 8), in real mode. ap_gdtr is filled
   in by the BSP with the kernel's GDT. */
    .code16
    .globl ap_trampoline, ap_trampoline_end, ap_gdtr
ap_trampoline:
    cli
    movw %cs, %ax
    movw %ax, %ds
    lgdtl ap_gdtr - ap_trampoline
    movl %cr0, %eax
    orl $1, %eax
    movl %eax, %cr0
    ljmpl $0x08, $ap_entry32
    .align 4
ap_gdtr:
    .word 0
    .long 0
ap_trampoline_end:
    .code32
ap_entry32:
    movw $0x10, %ax
    movw %ax, %ds
    movw %ax, %es
    movw %ax, %fs
    movw %ax, %gs
    movw %ax, %ss
    movl $0xfee00020, %eax      /* own APIC ID picks the stack */
    movl (%eax), %eax
    shrl $24, %eax
    andl $7, %eax
    movl %eax, %ecx
    incl %eax
    shll $12, %eax
    addl $ap_stacks, %eax
    movl %eax, %esp
    pushl %ecx
    call ap_main
1:  cli
    hlt
    jmp 1b

/* Last resort when there is no isa-debug-exit: a triple fault, which
   -no-reboot turns into an exit. */
    .globl triple_fault
triple_fault:
    lidt null_idtr
    int3
    jmp triple_fault

    .data
    .align 8
null_idtr:
    .word 0
    .long 0

    .bss
    .align 16
    .space 16384
boot_stack_top:
    .align 4096
    .globl ap_stacks
ap_stacks:
    .space 8 * 4096

    .section .note.GNU-stack, "", @progbits
