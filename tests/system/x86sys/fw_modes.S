/* Test firmware: reset vector -> real mode -> protected mode -> 32-bit paging
 * (with a page fault) -> long mode (with INT3 through a 64-bit IDT), printing
 * each step on COM1 and leaving through isa-debug-exit (port 0xf4).
 * Linked at 0xf0000 (the last 64 KiB below 1 MiB, where the BIOS appears). */
    .equ COM1, 0x3f8
    .equ PD32, 0x10000
    .equ IDT32, 0x11000
    .equ PML4, 0x20000
    .equ PDPT, 0x21000
    .equ PD64, 0x22000
    .equ IDT64, 0x23000

    .code16
    .globl _start
_start:
    cli
    cld
    xorw %ax, %ax
    movw %ax, %ss
    movw $0x7000, %sp
    movw $0xf000, %ax
    movw %ax, %ds
    movw $(msg_real - 0xf0000), %si
    call puts16
    /* 16-bit addressing: BP-based operands use SS, BX+SI DS */
    movw $0x1234, %ax
    pushw %ax
    movw %sp, %bp
    movw 0(%bp), %cx
    popw %ax
    movw $0x0100, %ax
    movw %ax, %es
    movw $0x5a5a, %es:(0x10)
    movw %es:(0x10), %dx
    movw $(msg_r16 - 0xf0000), %si
    call puts16
    movw %cx, %ax
    call hex16
    movw %dx, %ax
    call hex16
    movb $'\n', %al
    call putc16
    lgdtl (gdtr - 0xf0000)
    movl %cr0, %eax
    orl $1, %eax
    movl %eax, %cr0
    ljmpl $0x08, $pm32

putc16:
    pushw %dx
    movw $COM1, %dx
    outb %al, %dx
    popw %dx
    ret
puts16:
    lodsb
    testb %al, %al
    jz 1f
    call putc16
    jmp puts16
1:  ret
hex16:                      /* AX as 4 hex digits */
    pushw %cx
    movw $4, %cx
1:  rolw $4, %ax
    pushw %ax
    andb $15, %al
    addb $'0', %al
    cmpb $'9', %al
    jbe 2f
    addb $7, %al
2:  call putc16
    popw %ax
    loop 1b
    popw %cx
    ret

    .code32
pm32:
    movw $0x10, %ax
    movw %ax, %ds
    movw %ax, %es
    movw %ax, %ss
    movw %ax, %fs
    movw %ax, %gs
    movl $0x7000, %esp
    movl $msg_prot, %esi
    call puts32
    /* page directory: 4 MiB identity page, PSE */
    movl $PD32, %edi
    xorl %eax, %eax
    movl $1024, %ecx
    rep stosl
    movl $0x83, PD32
    movl %cr4, %eax
    orl $0x10, %eax
    movl %eax, %cr4
    movl $PD32, %eax
    movl %eax, %cr3
    movl %cr0, %eax
    orl $0x80000000, %eax
    movl %eax, %cr0
    movl $msg_paging, %esi
    call puts32
    /* IDT with a #PF handler, then a read of an unmapped address */
    movl $IDT32, %edi
    xorl %eax, %eax
    movl $512, %ecx
    rep stosl
    movl $pf32, %eax
    movw %ax, IDT32 + 14 * 8
    movw $0x08, IDT32 + 14 * 8 + 2
    movw $0x8e00, IDT32 + 14 * 8 + 4
    shrl $16, %eax
    movw %ax, IDT32 + 14 * 8 + 6
    lidt idtr32
    movl $0x11223344, %ebx
    movl 0x00c00010, %eax       /* 5 bytes: A1 imm32 */
    movl $msg_after_pf, %esi
    call puts32
    movl %ebx, %eax
    call hex32
    movb $'\n', %al
    call putc32
    /* long mode: PAE tables, 2 MiB identity pages for the first 4 MiB */
    movl %cr0, %eax
    andl $0x7fffffff, %eax
    movl %eax, %cr0
    movl $PML4, %edi
    xorl %eax, %eax
    movl $(3 * 1024), %ecx
    rep stosl
    movl $(PDPT + 3), PML4
    movl $(PD64 + 3), PDPT
    movl $0x83, PD64
    movl $0x200083, PD64 + 8
    movl %cr4, %eax
    orl $0x20, %eax
    movl %eax, %cr4
    movl $PML4, %eax
    movl %eax, %cr3
    movl $0xc0000080, %ecx
    rdmsr
    orl $0x100, %eax
    wrmsr
    movl %cr0, %eax
    orl $0x80000000, %eax
    movl %eax, %cr0
    ljmpl $0x18, $lm64

pf32:
    movl $msg_pf, %esi
    call puts32
    movl %cr2, %eax
    call hex32
    movb $' ', %al
    call putc32
    movl (%esp), %eax           /* error code */
    call hex32
    movb $'\n', %al
    call putc32
    addl $4, %esp
    addl $5, (%esp)             /* skip the faulting instruction */
    iret

putc32:
    pushl %edx
    movw $COM1, %dx
    outb %al, %dx
    popl %edx
    ret
puts32:
    lodsb
    testb %al, %al
    jz 1f
    call putc32
    jmp puts32
1:  ret
hex32:
    pushl %ecx
    movl $8, %ecx
1:  roll $4, %eax
    pushl %eax
    andb $15, %al
    addb $'0', %al
    cmpb $'9', %al
    jbe 2f
    addb $7, %al
2:  call putc32
    popl %eax
    loop 1b
    popl %ecx
    ret

    .code64
lm64:
    movw $0x20, %ax
    movw %ax, %ds
    movw %ax, %ss
    movq $0x7000, %rsp
    movq $msg_long, %rsi
    call puts64
    /* a 64-bit IDT with an INT3 trap gate */
    movq $IDT64, %rdi
    xorl %eax, %eax
    movl $1024, %ecx
    rep stosl
    movq $bp64, %rax
    movw %ax, IDT64 + 3 * 16
    movw $0x18, IDT64 + 3 * 16 + 2
    movw $0x8f00, IDT64 + 3 * 16 + 4
    shrq $16, %rax
    movw %ax, IDT64 + 3 * 16 + 6
    lidt idtr64
    movq $0x1122334455667788, %rbx
    int3
    movq $msg_back, %rsi
    call puts64
    movq %rbx, %rax
    shrq $32, %rax
    call hex32_64
    movl %ebx, %eax
    call hex32_64
    movb $'\n', %al
    call putc64
    movb $0x10, %al
    outb %al, $0xf4
1:  hlt
    jmp 1b

bp64:
    movq $msg_bp, %rsi
    call puts64
    movl 8(%rsp), %eax          /* saved CS */
    call hex32_64
    movb $' ', %al
    call putc64
    movq (%rsp), %rax
    subq $lm64, %rax            /* offset of the return RIP inside lm64 */
    call hex32_64
    movb $'\n', %al
    call putc64
    notq %rbx
    iretq

putc64:
    pushq %rdx
    movw $COM1, %dx
    outb %al, %dx
    popq %rdx
    ret
puts64:
    lodsb
    testb %al, %al
    jz 1f
    call putc64
    jmp puts64
1:  ret
hex32_64:
    pushq %rcx
    movl $8, %ecx
1:  roll $4, %eax
    pushq %rax
    andb $15, %al
    addb $'0', %al
    cmpb $'9', %al
    jbe 2f
    addb $7, %al
2:  call putc64
    popq %rax
    loop 1b
    popq %rcx
    ret

msg_real:     .asciz "real mode\n"
msg_r16:      .asciz "16-bit operands: "
msg_prot:     .asciz "protected mode\n"
msg_paging:   .asciz "paging on\n"
msg_pf:       .asciz "#PF cr2="
msg_after_pf: .asciz "after #PF ebx="
msg_long:     .asciz "long mode\n"
msg_bp:       .asciz "#BP cs:rip="
msg_back:     .asciz "back rbx="

    .align 8
gdt:
    .quad 0
    .quad 0x00cf9a000000ffff    /* 0x08 code32 */
    .quad 0x00cf92000000ffff    /* 0x10 data */
    .quad 0x00af9a000000ffff    /* 0x18 code64 */
    .quad 0x00cf92000000ffff    /* 0x20 data */
gdt_end:
gdtr:
    .word gdt_end - gdt - 1
    .long gdt
idtr32:
    .word 256 * 8 - 1
    .long IDT32
idtr64:
    .word 256 * 16 - 1
    .quad IDT64

    .code16
    .org 0xfff0
    ljmp $0xf000, $(_start - 0xf0000)
    .org 0x10000
